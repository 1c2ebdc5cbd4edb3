"""Focal-fast ("Focal Transformer v2") backbone for dense prediction.

Official code (ImageNet classification only): ``classification/focal_transformer_v2.py`` of
https://github.com/microsoft/Focal-Transformer, configs ``focalv2_{tiny,small,base}_useconv_patch4_window7_224``,
checkpoints ``focalv2-{tiny,small,base}-useconv-is224-ws7.pth``. The official README's answer to v1's speed: no rolls
or unfolds; each window attends its ``topk`` nearest tokens and nearest pooled windows
(:func:`mmfocal.models.layers.focal_v2_geometry`, :class:`mmfocal.models.layers.FocalV2Attention`).

Same as the official v2 model: every parameter and its name, the attention (keys, coordinate-MLP position
bias, fc window pooling), the conv stem and conv downsampling. Same weights and same input give the same
stage features wherever the official code runs (every stage map a multiple of 7, e.g. 224×224, 224×448).

Changed for detection and segmentation, as in :class:`FocalTransformer` (v1): no size fixed at
construction (the official index buffers, fixed to the build size, are dropped from checkpoints and
recomputed per map size, the same way), maps padded to multiples of the window, one output norm per
``out_indices`` entry, NCHW outputs.
"""

from typing import List, Optional, Sequence, Tuple, Union

from ..layers import FocalV2Block
from .focal_base import FocalBackbone

__all__ = ['FocalTransformerV2']


class FocalTransformerV2(FocalBackbone):
    """Focal-fast (v2) backbone returning multi-scale NCHW features; the output contract of v1.

    Args:
        arch: Preset ``'tiny'``, ``'small'`` or ``'base'`` (the released Focal-fast-T/S/B; ``'large'`` has no
            released v2 weights).
        in_channels: Image channels.
        embed_dims: Stage-1 channels C0; overrides the preset.
        depths: Blocks per stage; overrides the preset.
        num_heads: Heads per stage; overrides the preset.
        window_size: Window side s (7 in the released models).
        focal_levels: Per stage, 2 = nearest tokens + nearest pooled windows (official), 1 = tokens only.
        focal_topk: Keys per level and window (``FOCAL_TOPK``, 128 in the released models).
        focal_pool: Window pooling: ``'fc'`` (official), ``'mean'``, ``'max'``, ``'conv'``.
        mlp_ratio: MLP hidden width / channels.
        qkv_bias: Bias in the qkv projections.
        qk_scale: Override of head_dim ** -0.5.
        drop_rate: Dropout after projections.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth, linearly increasing over all blocks.
        use_conv_embed: Overlapping convolutional stem/downsampling (every released v2 model has it).
        out_indices: Stages whose outputs are returned (0..3 -> strides 4, 8, 16, 32).
        frozen_stages: -1 freezes nothing; 0 the stem; k also stages 1..k (and their norms).
        norm_eval: Accepted for config compatibility; LayerNorms have no running statistics.
        with_cp: Gradient checkpointing per block.
        norm_cfg: Norm config of all token norms.
        attn_impl: ``'fast'`` (default) or ``'reference'`` (the official formulation: position-bias MLP on
            every (query, key) pair, explicit logits and softmax).
        pretrain_img_size: Accepted for config compatibility; no size is fixed at construction.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` loads an official v2 or converted checkpoint.

    Examples:
        >>> import torch
        >>> from mmfocal.models import FocalTransformerV2
        >>> model = FocalTransformerV2(arch='tiny').eval()
        >>> [tuple(f.shape) for f in model(torch.rand(1, 3, 100, 150))]
        [(1, 96, 25, 37), (1, 192, 13, 19), (1, 384, 7, 10), (1, 768, 4, 5)]
    """

    # Version of the Focal-fast state-dict layout (saved in its metadata); 1: the official v2 names.
    _version = 1
    _focal_v2 = True
    arch_zoo = {
        'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
        'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
        'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
        'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),  # no released weights
    }
    arch_aliases = {'t': 'tiny', 's': 'small', 'b': 'base', 'l': 'large'}

    def __init__(self,
                 arch: str = 'tiny',
                 in_channels: int = 3,
                 embed_dims: Optional[int] = None,
                 depths: Optional[Sequence[int]] = None,
                 num_heads: Optional[Sequence[int]] = None,
                 window_size: int = 7,
                 focal_levels: Union[int, Sequence[int]] = 2,
                 focal_topk: int = 128,
                 focal_pool: str = 'fc',
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.2,
                 use_conv_embed: bool = True,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN'),
                 attn_impl: str = 'fast',
                 pretrain_img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if int(focal_topk) < 1:
            raise ValueError(f'FocalTransformerV2: focal_topk={focal_topk}: must be a positive number of keys (128 '
                             'in the released Focal-fast models).')
        arch, embed_dims, depths, num_heads = self.resolve_arch(arch, embed_dims, depths, num_heads, window_size)
        specs = [(FocalV2Block, dict(topk=int(focal_topk)))] * len(depths)
        super().__init__(arch, in_channels, embed_dims, depths, num_heads, window_size, focal_levels, focal_pool,
                         mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, drop_path_rate, use_conv_embed,
                         out_indices, frozen_stages, norm_eval, with_cp, norm_cfg, attn_impl, init_cfg, specs)
        self.focal_topk = int(focal_topk)
