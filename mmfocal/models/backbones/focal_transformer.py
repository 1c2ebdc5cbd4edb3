"""Focal Transformer backbone for dense prediction.

Paper: Yang et al., "Focal Self-attention for Local-Global Interactions in Vision Transformers",
NeurIPS 2021 (arXiv 2107.00641). Original code (ImageNet classification only):
https://github.com/microsoft/Focal-Transformer, ``classification/focal_transformer.py`` ("v1").

What is the same as the official v1 model: every parameter and its name, the focal attention
(window tokens + the cyclic expand ring + fc-pooled sub-windows with the -100 border mask, three
relative-position bias tables), zero padding after LN1 that is *not* masked, floor-ing downsample
convolutions. Same weights and same input give the same stage features.

What we changed for detection and segmentation:

* No size fixed at construction: padding, window counts, gather indices and masks are derived
  from the tensor in ``forward`` (indices cached per size). The official construction rule that
  shrinks the window and disables the expand ring on small maps is replaced by explicit per-stage
  ``expand_sizes``; ``(3, 3, 3, 0)`` is the layout of the released 224 checkpoints.
* The plain stem pads the image to a multiple of 4 (the official model asserts the size).
* One output LayerNorm ``norm{i}`` per ``out_indices`` entry, NCHW outputs (mmdet Swin style).
* The attention gathers all keys of a window (window, ring, pooled) with one precomputed index and
  runs one fused attention over them instead of materialising rolled copies (``attn_impl='fast'``,
  :mod:`mmfocal.ops`). Ring keys that the official rolls read twice are one key with the
  ``logaddexp`` of their biases (same softmax). ``attn_impl='reference'`` keeps the official
  roll/unfold formulation (also used for attention dropout > 0, which no released model has).

This file holds the v1 family (presets, its arguments); what both families share is
:class:`~.focal_base.FocalBackbone`, the layers are in :mod:`mmfocal.models.layers`, the attention machinery
in :mod:`mmfocal.ops` (``docs/architecture.md`` has the map).
"""

from typing import List, Optional, Sequence, Tuple, Union

from ..layers import FocalBlock
from .focal_base import FocalBackbone, per_stage

__all__ = ['FocalTransformer']


class FocalTransformer(FocalBackbone):
    """Focal Transformer backbone (v1) returning multi-scale NCHW features.

    Args:
        arch: Preset ``'tiny'``, ``'small'``, ``'base'`` or ``'large'`` (or ``'t'``/``'s'``/``'b'``/``'l'``); explicit
            ``embed_dims``/``depths``/``num_heads`` override it.
        in_channels: Image channels.
        embed_dims: Stage-1 channels C0 (stage i has C0 * 2^i).
        depths: Blocks per stage.
        num_heads: Heads per stage.
        window_size: Window side s (7 in all official models).
        focal_levels: Per stage, 2 = window + one pooled level (official), 1 = no pooled level.
        focal_windows: Per-stage pooled neighbourhood side (odd). ImageNet (7, 5, 3, 1); the paper's
            detection models use (15, 13, 9, 7) and the pretrained tables are resized on load.
        expand_sizes: Per-stage expand-ring width. ``(3, 3, 3, 0)`` is the layout of the released
            224 checkpoints; ``(3, 3, 3, 3)`` adds a freshly initialised stage-4 ring table.
        focal_pool: Sub-window pooling: ``'fc'`` (official), ``'mean'``, ``'max'``, ``'conv'``.
        mlp_ratio: MLP hidden width / channels.
        qkv_bias: Bias in the qkv projections.
        qk_scale: Override of head_dim ** -0.5.
        drop_rate: Dropout after projections.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth, linearly increasing over all blocks.
        use_conv_embed: Overlapping convolutional stem/downsampling (the official "useconv" models).
        out_indices: Stages whose outputs are returned (0..3 -> strides 4, 8, 16, 32).
        frozen_stages: -1 freezes nothing; 0 the stem; k also stages 1..k (and their norms).
        norm_eval: Accepted for config compatibility with other mmdet backbones. The token norms are
            LayerNorms, which keep no running statistics, so it changes nothing (a warning says so).
        with_cp: Gradient checkpointing per block (saves memory, same results).
        norm_cfg: Norm config of all token norms.
        attn_impl: ``'fast'`` (default) or ``'reference'`` (official roll/unfold formulation).
        pretrain_img_size: Accepted for config compatibility; no size is fixed at construction.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` loads an official or converted checkpoint.

    Examples:
        >>> import torch
        >>> from mmfocal.models import FocalTransformer
        >>> model = FocalTransformer(arch='tiny').eval()
        >>> feats = model(torch.rand(1, 3, 224, 320))
        >>> [tuple(f.shape) for f in feats]
        [(1, 96, 56, 80), (1, 192, 28, 40), (1, 384, 14, 20), (1, 768, 7, 10)]
    """

    # Version of the v1 state-dict layout (saved in its metadata); 1: the official v1 names.
    _version = 1
    _focal_v2 = False

    arch_zoo = {
        'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
        'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
        'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
        # Focal-L (ImageNet-22K; no configuration or weights released): Swin-L's widths, depths and heads; the
        # Focal-L UPerNet config says what else was inferred and why.
        'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
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
                 focal_windows: Union[int, Sequence[int]] = (7, 5, 3, 1),
                 expand_sizes: Union[int, Sequence[int]] = (3, 3, 3, 0),
                 focal_pool: str = 'fc',
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.2,
                 use_conv_embed: bool = False,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN'),
                 attn_impl: str = 'fast',
                 pretrain_img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        arch, embed_dims, depths, num_heads = self.resolve_arch(arch, embed_dims, depths, num_heads, window_size)
        n = len(depths)
        focal_windows = per_stage(focal_windows, n, 'focal_windows')
        expand_sizes = per_stage(expand_sizes, n, 'expand_sizes')
        for i in range(n):
            if focal_windows[i] < 1 or focal_windows[i] % 2 == 0:
                raise ValueError(f'FocalTransformer: focal_windows[{i}]={focal_windows[i]}: must be a positive odd '
                                 'number.')
            if not 0 <= expand_sizes[i] < window_size:
                raise ValueError(f'FocalTransformer: expand_sizes[{i}]={expand_sizes[i]}: must be in '
                                 f'[0, window_size={window_size}).')
        specs = [(FocalBlock, dict(expand_size=expand_sizes[i], focal_window=focal_windows[i])) for i in range(n)]
        super().__init__(arch, in_channels, embed_dims, depths, num_heads, window_size, focal_levels, focal_pool,
                         mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, drop_path_rate, use_conv_embed,
                         out_indices, frozen_stages, norm_eval, with_cp, norm_cfg, attn_impl, init_cfg, specs)
        self.focal_windows = focal_windows
        self.expand_sizes = expand_sizes
