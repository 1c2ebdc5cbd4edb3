"""FocalNet backbone for dense prediction and classification.

Paper: Yang et al., "Focal Modulation Networks", NeurIPS 2022 (arXiv 2203.11926). Official code:
https://github.com/microsoft/FocalNet (``classification/focalnet.py``; the detection backbone
``detection/mmdet/models/backbones/focalnet.py``; FocalNet-DINO's ``models/dino/focal.py`` for the large models).

What is the same as the official detection backbone: every parameter and its name (so its mmdet 2.x / mmseg 0.x
checkpoints and the classification releases load as they are), the padding (the image to a multiple of the
stem's stride, each stage's map to an even size before its downsampling, never cropped: stage i of an H×W image
has ceil(H / 2^(i+2)) rows), the output LayerNorm ``norm{i}`` of each ``out_indices`` entry, and the options it
lacks that FocalNet-DINO and the classifier have (post-norm, post-LN in the modulation, the normalised
modulator), so every release — T/S/B × srf/lrf, L/XL/H × fl3/fl4 and the isotropic models — runs here.

What differs, on purpose:

* The overlapped stem (``use_conv_embed``, L/XL/H) pads by 2 as the classifier, FocalNet-DINO and timm do — the
  padding the weights were trained with; the official mmdet/mmseg file pads by 3, which no released config uses.
* ``frozen_stages=k`` freezes the stem and stages 1..k with their output norms, as for every other mmdet backbone
  (the official file freezes k - 1 stages and never the norms).
* Checkpoints of other focal windows or levels are adapted as the official detection loader does (zero-padded
  kernels, gate rows in order), inside ``init_weights`` and every ``load_state_dict``, with one report.
"""

import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ...utils.logging import log_info
from ...utils.torch_compat import register_load_state_dict_pre_hook
from ..layers.focal_block import init_linear_and_norms
from ..layers.focal_modulation import FocalNetEmbed, FocalNetStage
from ..layers.primitives import build_norm
from ..utils.focal_checkpoint import (CheckpointMismatchError, check_checkpoint_exists, load_checkpoint_file,
                                      pretrained_checkpoint, summarize_keys)
from ..utils.focalnet_checkpoint import (adapt_focalnet_state_dict, describe_adaptations, final_norm_to_output,
                                         focalnet_backbone_state_dict, is_timm_layout, timm_to_official)
from .focal_base import BackboneLifecycle, per_stage, to_nchw

__all__ = ['FocalNet', 'run_focalnet_stages']

_LARGE = dict(depths=(2, 2, 18, 2), use_conv_embed=True, use_postln=True, use_layerscale=True, drop_path_rate=0.5)


class FocalNet(BackboneLifecycle, nn.Module):
    """FocalNet (focal modulation) backbone returning multi-scale NCHW features.

    Args:
        arch: A release (``'tiny_srf'``, ``'tiny_lrf'``, ``'small_srf'``, ``'small_lrf'``, ``'base_srf'``,
            ``'base_lrf'``, ``'large_fl3'``, ``'large_fl4'``, ``'xlarge_fl3'``, ``'xlarge_fl4'``, ``'huge_fl3'``,
            ``'huge_fl4'``, ``'tiny_iso'``, ``'small_iso'``, ``'base_iso'``; timm's ``'focalnet_'`` prefix is
            accepted). It sets every argument below that is left None; explicit values override it.
        in_channels: Image channels.
        embed_dims: Stage-1 channels C0 (stage i has C0 * 2^i).
        depths: Blocks per stage (one entry for the isotropic models).
        focal_levels: Convolution levels per stage (2: srf, 3: lrf / fl3, 4: fl4).
        focal_windows: First-level kernel side per stage (3 or 5 for ImageNet; the paper's detectors use 9, or
            (11, 9, 9, 7): the ImageNet kernels are zero-padded to them on load).
        patch_size: Stem stride (4; 16 for the isotropic models).
        mlp_ratio: MLP hidden width / channels.
        drop_rate: Dropout after the projections.
        drop_path_rate: Stochastic depth, linearly increasing over all blocks (the release's training value if
            None).
        use_conv_embed: Overlapping stem (7×7) and downsampling (3×3) convolutions (L/XL/H).
        use_postln: Norms after the residual branches instead of before (L/XL/H, base_iso).
        use_postln_in_modulation: LayerNorm inside the modulation (H).
        normalize_modulator: Divide the gated context by levels + 1 (L fl4).
        use_layerscale: Per-channel branch scales ``gamma_1`` / ``gamma_2`` (L/XL/H, base_iso).
        layerscale_value: Their initial value.
        patch_norm: LayerNorm after the stem and downsampling convolutions (all releases).
        out_indices: Stages whose outputs are returned (0..3 -> strides 4, 8, 16, 32); all if None.
        frozen_stages: -1 freezes nothing; 0 the stem; k also stages 1..k (and their output norms).
        norm_eval: Accepted for config compatibility: LayerNorms keep no running statistics (a warning says so).
        with_cp: Activation checkpointing per block in training (saves memory, same results).
        norm_cfg: Norm config of every LayerNorm.
        pretrain_img_size: Accepted for config compatibility with the official file; no size is fixed.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH[, prefix='backbone.'])`` loads an official
            classification, official mmdet/mmseg or timm file.

    Examples:
        >>> import torch
        >>> from mmfocal.models import FocalNet
        >>> model = FocalNet(arch='tiny_lrf').eval()
        >>> [tuple(f.shape) for f in model(torch.rand(1, 3, 197, 263))]
        [(1, 96, 50, 66), (1, 192, 25, 33), (1, 384, 13, 17), (1, 768, 7, 9)]
    """

    # Version of the state-dict layout (saved in its metadata); 1: the official FocalNet names.
    _version = 1

    arch_zoo: Dict[str, dict] = {
        'tiny_srf': dict(embed_dims=96, depths=(2, 2, 6, 2), focal_levels=2, focal_windows=3, drop_path_rate=0.2),
        'tiny_lrf': dict(embed_dims=96, depths=(2, 2, 6, 2), focal_levels=3, focal_windows=3, drop_path_rate=0.2),
        'small_srf': dict(embed_dims=96, depths=(2, 2, 18, 2), focal_levels=2, focal_windows=3, drop_path_rate=0.3),
        'small_lrf': dict(embed_dims=96, depths=(2, 2, 18, 2), focal_levels=3, focal_windows=3, drop_path_rate=0.3),
        'base_srf': dict(embed_dims=128, depths=(2, 2, 18, 2), focal_levels=2, focal_windows=3, drop_path_rate=0.5),
        'base_lrf': dict(embed_dims=128, depths=(2, 2, 18, 2), focal_levels=3, focal_windows=3, drop_path_rate=0.5),
        # ImageNet-22K releases (configs/*.yaml of the official repository)
        'large_fl3': dict(_LARGE, embed_dims=192, focal_levels=3, focal_windows=5),
        'large_fl4': dict(_LARGE, embed_dims=192, focal_levels=4, focal_windows=3, normalize_modulator=True),
        'xlarge_fl3': dict(_LARGE, embed_dims=256, focal_levels=3, focal_windows=5),
        # the classification yaml trains it without the normalised modulator (FocalNet-DINO's config sets it)
        'xlarge_fl4': dict(_LARGE, embed_dims=256, focal_levels=4, focal_windows=3),
        'huge_fl3': dict(_LARGE, embed_dims=352, focal_levels=3, focal_windows=3, use_postln_in_modulation=True),
        'huge_fl4': dict(_LARGE, embed_dims=352, focal_levels=4, focal_windows=3, use_postln_in_modulation=True),
        # isotropic: one stage of 16x16 patches
        'tiny_iso': dict(embed_dims=192, depths=(12, ), focal_levels=3, focal_windows=3, patch_size=16,
                         drop_path_rate=0.2),
        'small_iso': dict(embed_dims=384, depths=(12, ), focal_levels=3, focal_windows=3, patch_size=16,
                          drop_path_rate=0.2),
        'base_iso': dict(embed_dims=768, depths=(12, ), focal_levels=3, focal_windows=3, patch_size=16,
                         use_layerscale=True, use_postln=True, drop_path_rate=0.2),
    }
    _defaults = dict(patch_size=4, use_conv_embed=False, use_postln=False, use_postln_in_modulation=False,
                     normalize_modulator=False, use_layerscale=False)

    def __init__(self,
                 arch: str = 'tiny_srf',
                 in_channels: int = 3,
                 embed_dims: Optional[int] = None,
                 depths: Optional[Sequence[int]] = None,
                 focal_levels: Optional[Union[int, Sequence[int]]] = None,
                 focal_windows: Optional[Union[int, Sequence[int]]] = None,
                 patch_size: Optional[int] = None,
                 mlp_ratio: float = 4.,
                 drop_rate: float = 0.,
                 drop_path_rate: Optional[float] = None,
                 use_conv_embed: Optional[bool] = None,
                 use_postln: Optional[bool] = None,
                 use_postln_in_modulation: Optional[bool] = None,
                 normalize_modulator: Optional[bool] = None,
                 use_layerscale: Optional[bool] = None,
                 layerscale_value: float = 1e-4,
                 patch_norm: bool = True,
                 out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN'),
                 pretrain_img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__()
        self.init_cfg = init_cfg
        # mmengine's runners call init_weights() only on modules whose is_init is False
        self.is_init = False
        cfg = self._resolve(arch, dict(
            embed_dims=embed_dims, depths=depths, focal_levels=focal_levels, focal_windows=focal_windows,
            patch_size=patch_size, drop_path_rate=drop_path_rate, use_conv_embed=use_conv_embed,
            use_postln=use_postln, use_postln_in_modulation=use_postln_in_modulation,
            normalize_modulator=normalize_modulator, use_layerscale=use_layerscale))
        depths = tuple(int(d) for d in cfg['depths'])
        n = len(depths)
        out_indices = tuple(range(n)) if out_indices is None else tuple(int(i) for i in out_indices)
        focal_levels = tuple(int(v) for v in per_stage(cfg['focal_levels'], n, 'focal_levels'))
        focal_windows = tuple(int(v) for v in per_stage(cfg['focal_windows'], n, 'focal_windows'))
        self._check(n, depths, int(cfg['embed_dims']), focal_levels, focal_windows, int(cfg['patch_size']),
                    float(cfg['drop_path_rate']), out_indices, frozen_stages, mlp_ratio)

        self.embed_dims = int(cfg['embed_dims'])
        self.depths = depths
        self.focal_levels = focal_levels
        self.focal_windows = focal_windows
        self.patch_size = int(cfg['patch_size'])
        self.use_conv_embed = bool(cfg['use_conv_embed'])
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        if norm_eval:
            warnings.warn('FocalNet(norm_eval=True) has no effect: its LayerNorms keep no running statistics, so '
                          'train and eval mode compute the same.', stacklevel=2)
        self.num_features = [self.embed_dims * 2 ** i for i in range(n)]
        self.out_channels = [self.num_features[i] for i in out_indices]
        self.feature_info = [dict(num_chs=self.num_features[i], reduction=self.patch_size * 2 ** i,
                                  module=f'norm{i}') for i in out_indices]

        self.patch_embed = FocalNetEmbed(in_channels, self.embed_dims, stride=self.patch_size,
                                         overlap=self.use_conv_embed, patch_norm=patch_norm, norm_cfg=norm_cfg)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, float(cfg['drop_path_rate']), sum(depths), device='cpu').tolist()
        self.layers = nn.ModuleList(
            FocalNetStage(
                self.num_features[i], depths[i], dpr[sum(depths[:i]):sum(depths[:i + 1])], downsample=i < n - 1,
                use_conv_embed=self.use_conv_embed, patch_norm=patch_norm, with_cp=with_cp, norm_cfg=norm_cfg,
                focal_level=focal_levels[i], focal_window=focal_windows[i], mlp_ratio=mlp_ratio,
                drop_rate=drop_rate, use_layerscale=bool(cfg['use_layerscale']), layerscale_value=layerscale_value,
                use_postln=bool(cfg['use_postln']), use_postln_in_modulation=bool(cfg['use_postln_in_modulation']),
                normalize_modulator=bool(cfg['normalize_modulator']))
            for i in range(n))
        for i in out_indices:
            self.add_module(f'norm{i}', build_norm(norm_cfg, self.num_features[i]))
        self.arch = cfg['arch']
        register_load_state_dict_pre_hook(self, self._adapt_incoming_state_dict)
        self._freeze_stages()

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def _resolve(cls, arch: str, given: dict) -> dict:
        """The preset of ``arch`` with every explicitly given (not None) value on top."""
        key = str(arch).lower()
        key = key[len('focalnet_'):] if key.startswith('focalnet_') else key
        if key not in cls.arch_zoo:
            raise ValueError(f'FocalNet: unknown arch {arch!r}; choose one of {sorted(cls.arch_zoo)} (explicit '
                             'embed_dims, depths, focal_levels, focal_windows override a preset).')
        cfg = dict(cls._defaults, **cls.arch_zoo[key])
        cfg.update({k: v for k, v in given.items() if v is not None})
        cfg['arch'] = key
        return cfg

    @staticmethod
    def _check(n: int, depths: tuple, embed_dims: int, focal_levels: tuple, focal_windows: tuple, patch_size: int,
               drop_path_rate: float, out_indices: tuple, frozen_stages: int, mlp_ratio: float) -> None:
        """Reject a bad configuration with one message that names the value and what to change."""
        if n == 0 or any(d < 1 for d in depths):
            raise ValueError(f'FocalNet: depths must be a non-empty sequence of positive ints, got {depths}.')
        if embed_dims < 1:
            raise ValueError(f'FocalNet: embed_dims={embed_dims}: must be a positive int.')
        for i in range(n):
            if focal_levels[i] < 1:
                raise ValueError(f'FocalNet: focal_levels[{i}]={focal_levels[i]}: must be >= 1 (2 = srf, 3 = lrf).')
            if focal_windows[i] < 1 or focal_windows[i] % 2 == 0:
                raise ValueError(f'FocalNet: focal_windows[{i}]={focal_windows[i]}: must be a positive odd kernel '
                                 'side (3 for the ImageNet models, 9 in the paper\'s detectors).')
        if patch_size < 1:
            raise ValueError(f'FocalNet: patch_size={patch_size}: must be a positive int (4, or 16 for iso).')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'FocalNet: drop_path_rate={drop_path_rate}: must be in [0, 1).')
        if mlp_ratio <= 0:
            raise ValueError(f'FocalNet: mlp_ratio={mlp_ratio}: must be positive.')
        if len(out_indices) == 0 or any(not 0 <= i < n for i in out_indices) or len(set(out_indices)) != \
                len(out_indices):
            raise ValueError(f'FocalNet: out_indices={out_indices}: give distinct stages in 0..{n - 1}.')
        if not -1 <= frozen_stages <= n:
            raise ValueError(f'FocalNet: frozen_stages={frozen_stages}: must be in [-1, {n}] (-1 = none, 0 = the '
                             'stem, k = the stem and stages 1..k).')

    # --- weights -----------------------------------------------------------------------------

    def reset_parameters(self) -> None:
        """The official initialisation: trunc-normal(0.02) Linear weights, zero biases, LayerNorms 1 / 0; the
        convolutions keep PyTorch's default and the layer scales their initial value."""
        init_linear_and_norms(self)

    def check_pretrained(self) -> None:
        """Fail early on a missing ``init_cfg`` checkpoint or one for another width or stem.

        Raises:
            FileNotFoundError: The file does not exist (the message names the release URL of an official name).
            CheckpointMismatchError: The file holds no FocalNet, or one of another width or stem.
        """
        path = pretrained_checkpoint(self.init_cfg)
        if path is None or '://' in path:
            return
        check_checkpoint_exists(path, 'FocalNet init_cfg checkpoint')
        state, _ = focalnet_backbone_state_dict(load_checkpoint_file(os.path.expanduser(path), mmap=True))
        theirs, own = state.get('patch_embed.proj.weight'), self.patch_embed.proj.weight
        if theirs is not None and tuple(theirs.shape[:1] + theirs.shape[2:]) != tuple(own.shape[:1] + own.shape[2:]):
            raise CheckpointMismatchError(
                f'{path}: patch_embed.proj.weight is {tuple(theirs.shape)} but this FocalNet needs {tuple(own.shape)}: '
                f'the checkpoint is for another width or stem (arch={self.arch!r}, embed_dims={self.embed_dims}, '
                f'use_conv_embed={self.use_conv_embed}, patch_size={self.patch_size}).')

    def load_pretrained(self, path: str) -> Dict[str, List[str]]:
        """Load FocalNet weights of any released layout and log one report of what was adapted or left out.

        Args:
            path: Checkpoint path or URI.

        Returns:
            ``{'missing': [...], 'unexpected': [...], 'resized': [...]}``.
        """
        state, layout = focalnet_backbone_state_dict(load_checkpoint_file(os.path.expanduser(path)))
        model_state = self.state_dict()
        notes = [n for n in [final_norm_to_output(state, model_state, len(self.depths) - 1)] if n]
        head = [k for k in state if k.startswith('head.')]
        for key in head:
            del state[key]
        kernels, gates = adapt_focalnet_state_dict(state, model_state)
        result = self.load_state_dict(state, strict=False)
        missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
        if head:
            notes.append(f'classifier head dropped ({summarize_keys(head)})')
        notes += describe_adaptations(kernels, gates)
        log_info(f'FocalNet: loaded {len(state) - len(unexpected)} tensors from {path} ({layout} layout); '
                 f'missing (newly initialised): {summarize_keys(missing)}; '
                 f'unexpected (ignored): {summarize_keys(unexpected)}' + (f'; {"; ".join(notes)}' if notes else ''))
        return {'missing': missing, 'unexpected': unexpected, 'resized': kernels + gates}

    def _adapt_incoming_state_dict(self, module: nn.Module, state_dict: dict, prefix: str,
                                   local_metadata: dict, *args) -> None:
        """Pre-hook for every ``load_state_dict`` (init_cfg, load_from, resume): timm's names become the official
        ones, focal kernels and gate rows of another focal setting are adapted (logged), a newer layout refused."""
        if not any(k.startswith(prefix) for k in state_dict):
            return
        version = local_metadata.get('version')
        if version is not None and version > self._version:
            raise CheckpointMismatchError(
                f'these FocalNet weights were saved by a newer mmfocal (state-dict version {version}, this one reads '
                f'up to {self._version}): upgrade mmfocal to load them.')
        if is_timm_layout({k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}):
            ours = [k for k in state_dict if k.startswith(prefix)]
            renamed = timm_to_official({k[len(prefix):]: state_dict.pop(k) for k in ours})
            state_dict.update({prefix + k: v for k, v in renamed.items()})
        kernels, gates = adapt_focalnet_state_dict(state_dict, self.state_dict(), prefix)
        if kernels or gates:
            log_info(f'FocalNet: {"; ".join(describe_adaptations(kernels, gates))}')

    # --- forward -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the features of ``out_indices``.

        Args:
            x: Images (B, C, H, W), any H, W.

        Returns:
            Tuple of (B, C_i, H_i, W_i) maps, H_0 = ceil(H / patch_size), H_{i+1} = ceil(H_i / 2).
        """
        raw = self.forward_stages(x, self.out_indices)
        return tuple(to_nchw(getattr(self, f'norm{i}')(raw[i][0]), raw[i][1]) for i in self.out_indices)

    def forward_stages(self, x: torch.Tensor, indices: Sequence[int]
                       ) -> Dict[int, Tuple[torch.Tensor, Tuple[int, int]]]:
        """The raw (un-normed) outputs of the stages in ``indices``: stage -> ((B, H_i*W_i, C_i), (H_i, W_i))."""
        return run_focalnet_stages(self.patch_embed, self.pos_drop, self.layers, x, tuple(int(i) for i in indices))


def run_focalnet_stages(patch_embed: nn.Module, pos_drop: nn.Module, layers: nn.ModuleList, x: torch.Tensor,
                        indices: Tuple[int, ...]) -> Dict[int, Tuple[torch.Tensor, Tuple[int, int]]]:
    """Stem and stages up to ``max(indices)``; the raw outputs of ``indices``.

    A function of the modules (``torch.fx.wrap`` below) so that FX tools trace the backbone around it: the
    padding follows the input's size, which a symbolic trace does not know.
    """
    if x.dim() != 4:
        raise ValueError(f'FocalNet expects (B, C, H, W) images, got shape {tuple(x.shape)}.')
    if x.shape[1] != patch_embed.proj.in_channels:
        raise ValueError(f'FocalNet expects {patch_embed.proj.in_channels}-channel images, got {x.shape[1]} '
                         '(set in_channels).')
    last = max(indices)
    x, hw = patch_embed(x)
    x = pos_drop(x)
    outs = {}
    for i, layer in enumerate(layers):
        out, out_hw, x, hw = layer(x, hw, downsample=i < last)
        if i in indices:
            outs[i] = (out, out_hw)
        if i >= last:
            break
    return outs


torch.fx.wrap('run_focalnet_stages')
