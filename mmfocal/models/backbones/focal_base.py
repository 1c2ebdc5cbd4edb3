"""What both Focal Transformer families share as a dense-prediction backbone.

:class:`FocalBackbone` builds the stem, four stages of one family's blocks and the output norms, checks the
arguments, initialises and loads weights, freezes stages and runs the forward pass. A family
(:class:`~.FocalTransformer`, :class:`~.FocalTransformerV2`) gives its presets (``arch_zoo``), its state-dict
``_version``, the checks of its own arguments and its blocks (``block_specs``).
"""

import contextlib
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ...ops import compiling, scratch, tables_before_trace
from ...utils.logging import log_info
from ...utils.torch_compat import register_load_state_dict_pre_hook
from ..layers import FocalPatchEmbed, FocalStage, init_linear_and_norms
from ..layers.focal_block import _FocalBlockBase
from ..layers.primitives import build_norm
from ..utils.focal_checkpoint import (CheckpointMismatchError, adapt_state_dict, check_checkpoint_exists,
                                      check_version_family, extract_backbone_state_dict, load_checkpoint_file,
                                      official_to_mmfocal, pretrained_checkpoint, summarize_keys)

__all__ = ['BackboneLifecycle', 'FocalBackbone', 'mark_eager_under_dynamo', 'per_stage', 'run_stages', 'to_nchw']

# The geometry step as dynamo sees it: replaced by its dynamo-disabled form once torch._dynamo is imported
# (mark_eager_under_dynamo, called by mmfocal.registry), so that importing mmfocal does not import dynamo.
_EAGER_STEPS: Dict[str, object] = {}


def mark_eager_under_dynamo() -> None:
    """Run the backbones' geometry step outside dynamo's traces (called once torch._dynamo is imported)."""
    disable = getattr(torch.compiler, 'disable', None) or torch._dynamo.disable
    _EAGER_STEPS['prepare_geometry'] = disable(_prepare_geometry)


def per_stage(value: Union[int, float, Sequence], n: int, name: str) -> tuple:
    """Broadcast a scalar to n stages or check a per-stage sequence's length."""
    if isinstance(value, (int, float)):
        return (value, ) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f'{name} has {len(value)} entries but depths has {n}: give one value per stage.')
    return value


class BackboneLifecycle:
    """What mmengine's runners call on a backbone of ``patch_embed``, ``layers`` and output norms ``norm{i}``.

    ``init_weights``: the family's ``check_pretrained`` and ``reset_parameters``, then its ``load_pretrained`` of the
    ``init_cfg`` checkpoint; ``frozen_stages``: -1 freezes nothing, 0 the stem, k also stages 1..k with their output
    norms, and frozen parts stay in eval mode through ``train()``.
    """

    frozen_stages: int
    out_indices: Tuple[int, ...]
    init_cfg: Optional[Union[dict, List[dict]]]

    def init_weights(self) -> None:
        """:meth:`reset_parameters`, then the ``Pretrained`` checkpoint of ``init_cfg`` if any."""
        self.check_pretrained()
        self.reset_parameters()
        path = pretrained_checkpoint(self.init_cfg)
        if path is not None:
            self.load_pretrained(path)
        self.is_init = True
        self._freeze_stages()


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

    def train(self, mode: bool = True) -> 'BackboneLifecycle':
        """Set training mode, keeping frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self


class FocalBackbone(BackboneLifecycle, nn.Module):
    """Multi-scale NCHW backbone of one Focal family (abstract: use a family class).

    Args:
        arch: A preset of the family's ``arch_zoo`` (or its alias); explicit ``embed_dims``/``depths``/
            ``num_heads`` override it.
        in_channels: Image channels.
        embed_dims: Stage-1 channels C0 (stage i has C0 * 2^i).
        depths: Blocks per stage.
        num_heads: Heads per stage.
        window_size: Window side s.
        focal_levels: Per stage, 2 = with the pooled level (official), 1 = without.
        focal_pool: Window pooling: ``'fc'`` (official), ``'mean'``, ``'max'``, ``'conv'``.
        mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate: Block settings.
        drop_path_rate: Stochastic depth, linearly increasing over all blocks.
        use_conv_embed: Overlapping convolutional stem/downsampling.
        out_indices: Stages whose outputs are returned (0..3 -> strides 4, 8, 16, 32).
        frozen_stages: -1 freezes nothing; 0 the stem; k also stages 1..k (and their norms).
        norm_eval: Accepted for config compatibility (LayerNorms keep no running statistics).
        with_cp: Gradient checkpointing per block.
        norm_cfg: Norm config of all token norms.
        attn_impl: ``'fast'`` or ``'reference'`` (the official formulation).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)``.
        block_specs: Per stage, the family's block class and its family-specific arguments.
    """

    # Each family declares its own: the version of its state-dict layout, saved in the metadata.
    _version = 0
    _focal_v2 = False  # which official family's weights it takes
    arch_zoo: Dict[str, dict] = {}
    arch_aliases: Dict[str, str] = {}

    def __init__(self, arch: str, in_channels: int, embed_dims: Optional[int], depths: Optional[Sequence[int]],
                 num_heads: Optional[Sequence[int]], window_size: int, focal_levels: Union[int, Sequence[int]],
                 focal_pool: str, mlp_ratio: float, qkv_bias: bool, qk_scale: Optional[float], drop_rate: float,
                 attn_drop_rate: float, drop_path_rate: float, use_conv_embed: bool, out_indices: Sequence[int],
                 frozen_stages: int, norm_eval: bool, with_cp: bool, norm_cfg: dict, attn_impl: str,
                 init_cfg: Optional[Union[dict, List[dict]]], block_specs: Sequence[Tuple[type, dict]]) -> None:
        super().__init__()
        self.init_cfg = init_cfg
        # mmengine's runners call init_weights() only on modules whose is_init is False
        self.is_init = False
        arch_key, embed_dims, depths, num_heads = self.resolve_arch(arch, embed_dims, depths, num_heads, window_size)
        n = len(depths)
        if len(block_specs) != n:
            raise ValueError(f'{type(self).__name__}: {len(block_specs)} block specs for {n} stages.')
        focal_levels = per_stage(focal_levels, n, 'focal_levels')
        self._check_common(n, embed_dims, num_heads, window_size, focal_levels, focal_pool, attn_impl, out_indices,
                           frozen_stages, drop_path_rate)

        self.arch = arch_key
        self.embed_dims = embed_dims
        self.depths = depths
        self.num_heads = num_heads
        self.window_size = window_size
        self.focal_levels = focal_levels
        self.use_conv_embed = use_conv_embed
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        if norm_eval:
            warnings.warn(f'{type(self).__name__}(norm_eval=True) has no effect: its LayerNorms keep no running '
                          'statistics, so train and eval mode compute the same.', stacklevel=3)
        self.num_features = [embed_dims * 2 ** i for i in range(n)]
        # What each output is, for necks and users (timm's feature_info, mmpretrain's out_channels).
        self.out_channels = [self.num_features[i] for i in self.out_indices]
        self.feature_info = [dict(num_chs=self.num_features[i], reduction=4 * 2 ** i, module=f'norm{i}')
                             for i in self.out_indices]

        self.patch_embed = FocalPatchEmbed(in_channels=in_channels, embed_dims=embed_dims, is_stem=True,
                                           use_conv_embed=use_conv_embed, norm_cfg=norm_cfg)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # also under a meta device
        self.layers = nn.ModuleList()
        for i in range(n):
            block_cls, block_cfg = block_specs[i]
            self.layers.append(
                FocalStage(
                    self.num_features[i], depths[i], num_heads[i], dpr[sum(depths[:i]):sum(depths[:i + 1])],
                    downsample=i < n - 1, use_conv_embed=use_conv_embed, with_cp=with_cp, norm_cfg=norm_cfg,
                    block_cls=block_cls, window_size=window_size, focal_level=focal_levels[i],
                    pool_method=focal_pool, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                    drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, attn_impl=attn_impl, **block_cfg))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm(norm_cfg, self.num_features[i]))

        register_load_state_dict_pre_hook(self, self._adapt_incoming_state_dict)
        self._freeze_stages()

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def resolve_arch(cls, arch: str, embed_dims: Optional[int], depths: Optional[Sequence[int]],
                     num_heads: Optional[Sequence[int]], window_size: int) -> Tuple[str, int, tuple, tuple]:
        """The preset of ``arch`` with the explicit values on top: (arch, embed_dims, depths, num_heads).

        Checks what every family's own arguments depend on (the stages and the window size) first.
        """
        name = cls.__name__
        if int(window_size) < 1:
            raise ValueError(f'{name}: window_size must be >= 1, got {window_size}.')
        arch_key = cls.arch_aliases.get(str(arch).lower(), str(arch).lower())
        if arch_key not in cls.arch_zoo:
            raise ValueError(f'{name}: Unknown arch {arch!r}; choose one of {sorted(cls.arch_zoo)} '
                             '(or give embed_dims, depths and num_heads explicitly).')
        preset = cls.arch_zoo[arch_key]
        embed_dims = preset['embed_dims'] if embed_dims is None else int(embed_dims)
        depths = tuple(preset['depths'] if depths is None else depths)
        if len(depths) == 0 or any(int(d) < 1 for d in depths):
            raise ValueError(f'{name}: depths must be a non-empty sequence of positive ints, got {depths}.')
        num_heads = per_stage(preset['num_heads'] if num_heads is None else num_heads, len(depths), 'num_heads')
        return arch_key, embed_dims, depths, num_heads

    def _check_common(self, n: int, embed_dims: int, num_heads: tuple, window_size: int, focal_levels: tuple,
                      focal_pool: str, attn_impl: str, out_indices: Sequence[int], frozen_stages: int,
                      drop_path_rate: float) -> None:
        """Reject bad configurations with one message that names the class and says what to change."""
        name = type(self).__name__
        for i in range(n):
            channels = embed_dims * 2 ** i
            if channels % num_heads[i]:
                raise ValueError(f'{name}: stage {i}: {channels} channels are not divisible by '
                                 f'num_heads={num_heads[i]}.')
            if focal_levels[i] not in (1, 2):
                raise ValueError(f'{name}: focal_levels[{i}]={focal_levels[i]}: only 1 or 2 are supported '
                                 '(2 = with one pooled level, as in every official model).')
        if focal_pool not in ('fc', 'mean', 'max', 'conv'):
            raise ValueError(f"{name}: focal_pool={focal_pool!r}: choose 'fc', 'mean', 'max' or 'conv'.")
        if attn_impl not in ('fast', 'reference'):
            raise ValueError(f"{name}: attn_impl={attn_impl!r}: choose 'fast' or 'reference'.")
        if len(out_indices) == 0 or any(not 0 <= int(i) < n for i in out_indices):
            raise ValueError(f'{name}: out_indices={tuple(out_indices)} out of range: stages are 0..{n - 1}.')
        if not -1 <= frozen_stages <= n:
            raise ValueError(f'{name}: frozen_stages={frozen_stages}: must be in [-1, {n}].')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'{name}: drop_path_rate={drop_path_rate}: must be in [0, 1).')

    def check_pretrained(self) -> None:
        """Fail early on a missing ``init_cfg`` checkpoint or one of another family, width or stem.

        Building the model never reads weights (testing, FLOP counting and export need none);
        :meth:`init_weights` calls this first (``tools/train.py`` checks the file before loading data).

        Raises:
            FileNotFoundError: The checkpoint file does not exist (the message names its official URL).
            CheckpointMismatchError: The checkpoint is for another family, width or stem.
        """
        path = pretrained_checkpoint(self.init_cfg)
        if path is None or '://' in path:
            return
        check_checkpoint_exists(path, f'{type(self).__name__} init_cfg checkpoint')
        state, _ = official_to_mmfocal(load_checkpoint_file(os.path.expanduser(path), mmap=True))
        check_version_family(state, self._focal_v2, path)
        own = self.patch_embed.proj.weight
        theirs = state.get('patch_embed.proj.weight')
        if theirs is not None and tuple(theirs.shape) != tuple(own.shape):
            raise CheckpointMismatchError(
                f'{path}: patch_embed.proj.weight is {tuple(theirs.shape)} but this {type(self).__name__} needs '
                f'{tuple(own.shape)}: the checkpoint is for another width or stem (arch={self.arch!r}, '
                f'embed_dims={self.embed_dims}, use_conv_embed={self.use_conv_embed}).')

    # --- weights -----------------------------------------------------------------------------

    def reset_parameters(self) -> None:
        """Initialise from scratch: every Linear and LayerNorm the official way, then each block's extras.

        All Linear layers first, then the blocks' bias tables and pooling (:meth:`_FocalBlockBase.
        init_attention_extras`): the official order of random draws, so a seeded run is repeatable across
        versions.
        """
        init_linear_and_norms(self)
        for m in self.modules():
            if isinstance(m, _FocalBlockBase):
                m.init_attention_extras()

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
        log_info(
            f'{type(self).__name__}: loaded {len(state) - len(unexpected)} tensors from {path}; '
            f'missing (newly initialised): {summarize_keys(missing)}; '
            f'unexpected (ignored): {summarize_keys(unexpected)}' + (f'; {"; ".join(notes)}' if notes else ''))
        return {'missing': missing, 'unexpected': unexpected}

    def _adapt_incoming_state_dict(self, module: nn.Module, state_dict: dict, prefix: str,
                                   local_metadata: dict, *args) -> None:
        """Pre-hook for every ``load_state_dict`` (init_cfg, load_from, resume): drop index buffers,
        resize bias tables of other focal windows / window sizes, reject other families and widths clearly.

        ``local_metadata['version']`` is the ``_version`` of the class that saved the weights (absent for
        the official checkpoints, which come through :func:`official_to_mmfocal`); a newer one than
        ours is a layout this code does not know.
        """
        if not any(k.startswith(prefix) for k in state_dict):
            return
        name = type(self).__name__
        version = local_metadata.get('version')
        if version is not None and version > self._version:
            raise CheckpointMismatchError(
                f'these {name} weights were saved by a newer mmfocal (state-dict version {version}, '
                f'this one reads up to {self._version}): upgrade mmfocal to load them.')
        check_version_family(state_dict, self._focal_v2, 'the weights being loaded', prefix)
        _, resized = adapt_state_dict(state_dict, self.state_dict(), prefix)
        if resized:
            log_info(f'{name}: resized bias tables {", ".join(resized)}')

    # --- forward -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the features of ``out_indices``.

        Args:
            x: Images (B, C, H, W), any H, W >= 32.

        Returns:
            Tuple of (B, C_i, H_i, W_i) maps with H_0 = ceil(H / 4) and H_{i+1} = floor(H_i / 2)
            (ceil with ``use_conv_embed``), i.e. strides 4, 8, 16, 32.
        """
        raw = self.forward_stages(x, self.out_indices)
        return tuple(to_nchw(getattr(self, f'norm{i}')(raw[i][0]), raw[i][1]) for i in self.out_indices)

    def forward_stages(self, x: torch.Tensor, indices: Sequence[int]
                       ) -> Dict[int, Tuple[torch.Tensor, Tuple[int, int]]]:
        """Run the stem and the stages up to ``max(indices)``; the raw (un-normed) outputs of ``indices``.

        The one forward loop of the family (the backbone's forward and the classifier's intermediates use
        it), inside one scratch scope.

        Args:
            x: Images (B, C, H, W), H, W >= 32.
            indices: Stages whose outputs are kept.

        Returns:
            Stage index -> (tokens (B, H_i * W_i, C_i), (H_i, W_i)).
        """
        return run_stages(self.patch_embed, self.pos_drop, self.layers, x, tuple(int(i) for i in indices),
                          type(self).__name__)


def run_stages(patch_embed: nn.Module, pos_drop: nn.Module, layers: nn.ModuleList, x: torch.Tensor,
               indices: Tuple[int, ...], name: str) -> Dict[int, Tuple[torch.Tensor, Tuple[int, int]]]:
    """The body of :meth:`FocalBackbone.forward_stages`: checks, stem, stages, one scratch scope.

    A function of the backbone's modules rather than a method so that ``torch.fx`` records it as one call
    (``torch.fx.wrap`` below): the stages' padding, window counts and gather tables follow the input's size,
    which a symbolic trace does not know. FX tools (timm's and torchvision's feature extractors, FX
    quantization, mmengine's FX-based tools) then trace the backbone and classifiers around it.

    Args:
        patch_embed: The stem.
        pos_drop: Dropout after the stem.
        layers: The stages.
        x: Images (B, C, H, W), H, W >= 32.
        indices: Stages whose outputs are kept.
        name: The model's class name, for error messages.

    Returns:
        Stage index -> (tokens (B, H_i * W_i, C_i), (H_i, W_i)).
    """
    if x.dim() != 4:
        raise ValueError(f'{name} expects (B, C, H, W) images, got shape {tuple(x.shape)}.')
    if min(x.shape[2:]) < 32:
        raise ValueError(f'{name} needs H, W >= 32 (four stride-2 stages after stride 4); '
                         f'got {tuple(x.shape[2:])}.')
    last = max(indices)
    if tables_before_trace():
        _EAGER_STEPS.get('prepare_geometry', _prepare_geometry)(patch_embed, layers, tuple(x.shape[2:]), x.device,
                                                                  last)
    x, hw = patch_embed(x)
    x = pos_drop(x)
    outs = {}
    # compiled calls use no reused buffers (ops.choose_path), and dynamo would break the graph at the scope
    with contextlib.nullcontext() if compiling() else scratch.forward_scope():
        for i, layer in enumerate(layers):
            out, out_hw, x, hw = layer(x, hw, downsample=i < last)
            if i in indices:
                outs[i] = (out, out_hw)
            if i >= last:
                break
    return outs


torch.fx.wrap('run_stages')


def _prepare_geometry(patch_embed: nn.Module, layers: nn.ModuleList, hw: Tuple[int, int], device: torch.device,
                      last: int) -> None:
    """Fill the gather-table cache for an H×W input before dynamo traces the stages.

    The tables are built from data-dependent sizes (``topk`` ranges): built inside the trace they would break
    the graph in every block. This runs eagerly, one break at the start of the forward, and the blocks then
    read the tables as constants.
    """
    hw = patch_embed.output_size((int(hw[0]), int(hw[1])))
    for layer in layers[:last + 1]:
        hw = layer.prepare(hw, device)


def to_nchw(tokens: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """(B, H * W, C) tokens as a contiguous (B, C, H, W) map."""
    # indexed, not unpacked: under torch.fx hw is one traced value
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, hw[0], hw[1]).contiguous()
