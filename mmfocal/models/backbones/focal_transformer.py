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

This file holds the backbone (arch presets, construction checks, weights, freezing, forward); the
layers are in :mod:`mmfocal.models.layers`, checkpoint conversion in :mod:`mmfocal.models.utils`
(``docs/architecture.md`` has the map).
"""

import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from ...ops import scratch
from ...utils.torch_compat import register_load_state_dict_pre_hook
from ..layers import FocalAttention, FocalBlock, FocalPatchEmbed, FocalStage
from ..utils.focal_checkpoint import (CheckpointMismatchError, adapt_state_dict, check_checkpoint_exists,
                                      check_version_family, extract_backbone_state_dict, load_checkpoint_file,
                                      official_to_mmfocal, pretrained_checkpoint, summarize_keys)

__all__ = ['FocalTransformer']


def _to_tuple(value: Union[int, float, Sequence], n: int, name: str) -> tuple:
    """Broadcast a scalar to n stages or check a per-stage sequence's length."""
    if isinstance(value, (int, float)):
        return (value, ) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f'{name} has {len(value)} entries but depths has {n}: give one value per stage.')
    return value


class FocalTransformer(BaseModule):
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

    # Version of the state-dict layout (saved in its metadata); 1: the official names (see module docstring).
    _version = 1
    _focal_v2 = False  # which official family's weights it takes (FocalTransformerV2 sets it)

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
        super().__init__(init_cfg=init_cfg)
        arch_key = self.arch_aliases.get(str(arch).lower(), str(arch).lower())
        if arch_key not in self.arch_zoo:
            raise ValueError(f'Unknown arch {arch!r}; choose one of {sorted(self.arch_zoo)} '
                             "(or give embed_dims, depths and num_heads explicitly).")
        preset = self.arch_zoo[arch_key]
        embed_dims = preset['embed_dims'] if embed_dims is None else int(embed_dims)
        depths = tuple(preset['depths'] if depths is None else depths)
        n = len(depths)
        num_heads = _to_tuple(preset['num_heads'] if num_heads is None else num_heads, n, 'num_heads')
        focal_levels = _to_tuple(focal_levels, n, 'focal_levels')
        focal_windows = _to_tuple(focal_windows, n, 'focal_windows')
        expand_sizes = _to_tuple(expand_sizes, n, 'expand_sizes')
        self._check_args(embed_dims, depths, num_heads, window_size, focal_levels, focal_windows, expand_sizes,
                         focal_pool, attn_impl, out_indices, frozen_stages, drop_path_rate)

        self.arch = arch_key
        self.embed_dims = embed_dims
        self.depths = depths
        self.num_heads = num_heads
        self.window_size = window_size
        self.focal_levels = focal_levels
        self.focal_windows = focal_windows
        self.expand_sizes = expand_sizes
        self.use_conv_embed = use_conv_embed
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        if norm_eval:
            warnings.warn('FocalTransformer(norm_eval=True) has no effect: its LayerNorms keep no running '
                          'statistics, so train and eval mode compute the same.', stacklevel=2)
        self.num_features = [embed_dims * 2 ** i for i in range(n)]
        # What each output is, for necks and users (timm's feature_info, mmpretrain's out_channels).
        self.out_channels = [self.num_features[i] for i in self.out_indices]
        self.feature_info = [dict(num_chs=self.num_features[i], reduction=4 * 2 ** i, module=f'norm{i}')
                             for i in self.out_indices]

        self.patch_embed = FocalPatchEmbed(in_channels=in_channels, embed_dims=embed_dims, is_stem=True,
                                           use_conv_embed=use_conv_embed, norm_cfg=norm_cfg)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList()
        for i in range(n):
            self.layers.append(
                FocalStage(
                    self.num_features[i], depths[i], num_heads[i], dpr[sum(depths[:i]):sum(depths[:i + 1])],
                    downsample=i < n - 1, use_conv_embed=use_conv_embed, with_cp=with_cp, norm_cfg=norm_cfg,
                    window_size=window_size, focal_level=focal_levels[i], pool_method=focal_pool, mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias, qk_scale=qk_scale, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                    **self._stage_block_cfg(i, expand_size=expand_sizes[i], focal_window=focal_windows[i],
                                            attn_impl=attn_impl)))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.num_features[i])[1])

        register_load_state_dict_pre_hook(self, self._adapt_incoming_state_dict)
        self._freeze_stages()

    # --- construction ------------------------------------------------------------------------

    def _stage_block_cfg(self, stage: int, **v1_cfg) -> dict:
        """Block arguments that differ between the v1 blocks and the Focal-fast (v2) ones."""
        return dict(block_cls=FocalBlock, **v1_cfg)

    @staticmethod
    def _check_args(embed_dims: int, depths: tuple, num_heads: tuple, window_size: int, focal_levels: tuple,
                    focal_windows: tuple, expand_sizes: tuple, focal_pool: str, attn_impl: str,
                    out_indices: Sequence[int], frozen_stages: int, drop_path_rate: float) -> None:
        """Reject bad configurations with one message that says what to change."""
        n = len(depths)
        if n == 0 or any(int(d) < 1 for d in depths):
            raise ValueError(f'depths must be a non-empty sequence of positive ints, got {depths}.')
        if int(window_size) < 1:
            raise ValueError(f'window_size must be >= 1, got {window_size}.')
        for i in range(n):
            channels = embed_dims * 2 ** i
            if channels % num_heads[i]:
                raise ValueError(f'stage {i}: {channels} channels are not divisible by num_heads={num_heads[i]}.')
            if focal_levels[i] not in (1, 2):
                raise ValueError(f'focal_levels[{i}]={focal_levels[i]}: only 1 or 2 are supported '
                                 '(2 = window + one pooled level, as in every official model).')
            if focal_windows[i] < 1 or focal_windows[i] % 2 == 0:
                raise ValueError(f'focal_windows[{i}]={focal_windows[i]}: must be a positive odd number.')
            if not 0 <= expand_sizes[i] < window_size:
                raise ValueError(f'expand_sizes[{i}]={expand_sizes[i]}: must be in [0, window_size={window_size}).')
        if focal_pool not in ('fc', 'mean', 'max', 'conv'):
            raise ValueError(f"focal_pool={focal_pool!r}: choose 'fc', 'mean', 'max' or 'conv'.")
        if attn_impl not in ('fast', 'reference'):
            raise ValueError(f"attn_impl={attn_impl!r}: choose 'fast' or 'reference'.")
        if len(out_indices) == 0 or any(not 0 <= int(i) < n for i in out_indices):
            raise ValueError(f'out_indices={tuple(out_indices)} out of range: stages are 0..{n - 1}.')
        if not -1 <= frozen_stages <= n:
            raise ValueError(f'frozen_stages={frozen_stages}: must be in [-1, {n}].')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate={drop_path_rate}: must be in [0, 1).')

    def check_pretrained(self) -> None:
        """Fail early on a missing ``init_cfg`` checkpoint or one of another width (cheap, memory-mapped).

        Building the model never reads weights (testing, FLOP counting and export need none);
        :meth:`init_weights` calls this first (``tools/train.py`` checks the file before loading data).

        Raises:
            FileNotFoundError: The checkpoint file does not exist (the message names its official URL).
            CheckpointMismatchError: The checkpoint is for another width or stem.
        """
        path = pretrained_checkpoint(self.init_cfg)
        if path is None or '://' in path:
            return
        check_checkpoint_exists(path)
        state, _ = official_to_mmfocal(load_checkpoint_file(os.path.expanduser(path), mmap=True))
        check_version_family(state, self._focal_v2, path)
        own = self.patch_embed.proj.weight
        theirs = state.get('patch_embed.proj.weight')
        if theirs is not None and tuple(theirs.shape) != tuple(own.shape):
            raise CheckpointMismatchError(
                f'{path}: patch_embed.proj.weight is {tuple(theirs.shape)} but this model needs {tuple(own.shape)}: '
                f'the checkpoint is for another width or stem (arch={self.arch!r}, embed_dims={self.embed_dims}, '
                f'use_conv_embed={self.use_conv_embed}).')

    # --- weights -----------------------------------------------------------------------------

    def _official_init(self) -> None:
        """The official initialisation (trunc-normal 0.02 Linear weights and bias tables)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.weight, 1.0)
                nn.init.constant_(m.bias, 0)
        for m in self.modules():
            if isinstance(m, FocalAttention):
                if m.expand_size > 0:
                    trunc_normal_(m.relative_position_bias_table_to_neighbors, std=.02)
                if m.focal_level > 1:
                    trunc_normal_(m.relative_position_bias_table_to_windows[0], std=.02)
            elif isinstance(m, FocalBlock) and m.pool_method == 'fc' and len(m.pool_layers):
                # Mean pooling to start with (the official constructor's intent).
                nn.init.constant_(m.pool_layers[0].weight, 1. / m.pool_layers[0].in_features)
                nn.init.constant_(m.pool_layers[0].bias, 0)

    def init_weights(self) -> None:
        """Official initialisation, then the ``Pretrained`` checkpoint of ``init_cfg`` if any."""
        self.check_pretrained()
        self._official_init()
        path = pretrained_checkpoint(self.init_cfg)
        if path is not None:
            self.load_pretrained(path)
        self._is_init = True
        self._freeze_stages()

    def load_pretrained(self, path: str) -> Dict[str, List[str]]:
        """Load an official or converted checkpoint and log one summary line.

        Args:
            path: Checkpoint path or URI.

        Returns:
            ``{'missing': [...], 'unexpected': [...]}`` backbone keys.
        """
        state = load_checkpoint_file(os.path.expanduser(path))
        check_version_family(extract_backbone_state_dict(state), self._focal_v2, path)
        state, notes = official_to_mmfocal(state, self.state_dict())
        result = self.load_state_dict(state, strict=False)
        missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
        print_log(
            f'{type(self).__name__}: loaded {len(state) - len(unexpected)} tensors from {path}; '
            f'missing (newly initialised): {summarize_keys(missing)}; '
            f'unexpected (ignored): {summarize_keys(unexpected)}' + (f'; {"; ".join(notes)}' if notes else ''),
            logger='current')
        return {'missing': missing, 'unexpected': unexpected}

    def _adapt_incoming_state_dict(self, module: nn.Module, state_dict: dict, prefix: str,
                                   local_metadata: dict, *args) -> None:
        """Pre-hook for every ``load_state_dict`` (init_cfg, load_from, resume): drop index buffers,
        resize bias tables of other focal windows / window sizes, reject other widths clearly.

        ``local_metadata['version']`` is the ``_version`` of the class that saved the weights (absent for
        the official checkpoints, which come through :func:`official_to_mmfocal`); a newer one than
        ours is a layout this code does not know.
        """
        if not any(k.startswith(prefix) for k in state_dict):
            return
        version = local_metadata.get('version')
        if version is not None and version > self._version:
            raise CheckpointMismatchError(
                f'these FocalTransformer weights were saved by a newer mmfocal (state-dict version {version}, '
                f'this one reads up to {self._version}): upgrade mmfocal to load them.')
        check_version_family(state_dict, self._focal_v2, 'the weights being loaded', prefix)
        _, resized = adapt_state_dict(state_dict, self.state_dict(), prefix)
        if resized:
            print_log(f'FocalTransformer: resized bias tables {", ".join(resized)}', logger='current')

    # --- training mode -----------------------------------------------------------------------

    def _freeze_stages(self) -> None:
        """Freeze the stem and the first ``frozen_stages`` stages (with their output norms)."""
        if self.frozen_stages >= 0:
            self.patch_embed.eval()
            for p in self.patch_embed.parameters():
                p.requires_grad = False
        for i in range(self.frozen_stages):
            modules = [self.layers[i]] + ([getattr(self, f'norm{i}')] if i in self.out_indices else [])
            for m in modules:
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> 'FocalTransformer':
        """Set training mode, keeping frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    # --- forward -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the features of ``out_indices``.

        Args:
            x: Images (B, C, H, W), any H, W >= 32.

        Returns:
            Tuple of (B, C_i, H_i, W_i) maps with H_0 = ceil(H / 4) and H_{i+1} = floor(H_i / 2)
            (ceil with ``use_conv_embed``), i.e. strides 4, 8, 16, 32.
        """
        if x.dim() != 4:
            raise ValueError(f'FocalTransformer expects (B, C, H, W) images, got shape {tuple(x.shape)}.')
        if min(x.shape[2:]) < 32:
            raise ValueError(f'FocalTransformer needs H, W >= 32 (four stride-2 stages after stride 4); '
                             f'got {tuple(x.shape[2:])}.')
        x, hw = self.patch_embed(x)
        x = self.pos_drop(x)
        outs = []
        last = max(self.out_indices)
        scratch.begin_forward()
        for i, layer in enumerate(self.layers):
            out, out_hw, x, hw = layer(x, hw, downsample=i < last)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.transpose(1, 2).reshape(out.shape[0], -1, *out_hw).contiguous())
            if i >= last:
                break
        scratch.end_forward()
        return tuple(outs)
