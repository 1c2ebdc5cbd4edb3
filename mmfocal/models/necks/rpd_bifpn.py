"""The BiFPN neck of the Swin/Focal RepPoints V2 recipe (``RPDBiFPN``).

The neck of Swin-Transformer-Object-Detection's ``reppointsv2_swin_bifpn`` config, which the Focal paper's
RepPoints V2 experiment used: ``num_repeat`` bidirectional layers, each a top-down pass and a bottom-up pass
whose inputs are merged by learned non-negative weights (fast normalised fusion followed by swish) and a 3x3
conv. Extra levels come from stride-2 max-pooling. Registered as ``RPDBiFPN`` so that it cannot clash with the
EfficientDet ``BiFPN`` of mmdet's ``projects/`` (a different module: separable convs, BN, its own resampling).
"""

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

__all__ = ['WeightedFusion', 'BiFPNLayer', 'RPDBiFPN']


class WeightedFusion(nn.Module):
    """Fast normalised fusion of same-shaped maps, then swish.

    ``swish(sum_i relu(w_i) x_i / (sum_i relu(w_i) + 1e-4))`` with the weights initialised to 1.

    Args:
        num_inputs: How many maps are fused.
    """

    def __init__(self, num_inputs: int) -> None:
        super().__init__()
        # the published module stores the weights as (1, 1, 1, 1, n); kept so that its state dicts load as is
        self.weights = nn.Parameter(torch.ones(1, 1, 1, 1, num_inputs))

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Fuse ``inputs`` (all of one shape) into one map of that shape."""
        weights = self.weights.relu()
        weights = weights / (weights.sum() + 1e-4)
        fused = (torch.stack(list(inputs), dim=-1) * weights).sum(dim=-1)
        return fused * fused.sigmoid()


def _resize_like(x: Tensor, ref: Tensor, mode: str) -> Tensor:
    """``x`` resampled to ``ref``'s spatial size; a no-op when the sizes agree."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    kwargs = {} if mode == 'nearest' else dict(align_corners=False)
    return F.interpolate(x, size=ref.shape[-2:], mode=mode, **kwargs)


class BiFPNLayer(nn.Module):
    """One bidirectional layer: lateral 1x1 convs, a top-down and a bottom-up pass.

    Args:
        in_channels: Channels of each input level (finest first).
        out_channels: Channels of every output level.
        norm_on_convs: Whether the lateral and fusion convs have ``norm_cfg``.
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config.
        act_cfg: Activation of the lateral convs (the fusion convs have none: swish comes before them).
        upsample_mode: ``F.interpolate`` mode of the top-down pass.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, norm_on_convs: bool = True,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None,
                 upsample_mode: str = 'nearest') -> None:
        super().__init__()
        num_levels = len(in_channels)
        norm = norm_cfg if norm_on_convs else None
        self.upsample_mode = upsample_mode

        def fusion_conv() -> ConvModule:
            return ConvModule(out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm,
                              act_cfg=None, inplace=False)

        self.lateral_convs = nn.ModuleList(
            nn.Identity() if c == out_channels else ConvModule(
                c, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm, act_cfg=act_cfg, inplace=False)
            for c in in_channels)
        # top-down: level i (< last) fuses itself with the upsampled level i + 1
        self.lateral_combine = nn.ModuleList(WeightedFusion(2) for _ in range(num_levels - 1))
        self.lateral_combine_conv = nn.ModuleList(fusion_conv() for _ in range(num_levels - 1))
        # bottom-up: level i (> 0) fuses the pooled level i - 1, its top-down map and (not the last) its lateral
        self.out_combine = nn.ModuleList(
            WeightedFusion(3 if i < num_levels - 1 else 2) for i in range(1, num_levels))
        self.out_combine_conv = nn.ModuleList(fusion_conv() for _ in range(num_levels - 1))

    def forward(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        """Maps of the same sizes as ``inputs``, ``out_channels`` each."""
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        outs = list(laterals)
        for i in range(len(outs) - 1, 0, -1):
            up = _resize_like(outs[i], outs[i - 1], self.upsample_mode)
            outs[i - 1] = self.lateral_combine_conv[i - 1](self.lateral_combine[i - 1]([outs[i - 1], up]))
        for i in range(1, len(outs)):
            # stride-2 pooling gives ceil(size / 2); resizing only matters when a level is not that
            down = _resize_like(F.max_pool2d(outs[i - 1], 3, stride=2, padding=1), outs[i], 'nearest')
            parts = [down, outs[i]] + ([laterals[i]] if i < len(outs) - 1 else [])
            outs[i] = self.out_combine_conv[i - 1](self.out_combine[i - 1](parts))
        return outs


class RPDBiFPN(BaseModule):
    """BiFPN of the Swin/Focal RepPoints V2 recipe.

    The backbone levels ``start_level:`` are complemented to ``num_outs`` levels by stride-2 max-pooling of the
    coarsest one (``add_extra_convs=False``, the recipe) or by a 1x1 conv + max-pooling per extra level
    (``add_extra_convs=True``), then pass ``num_repeat`` :class:`BiFPNLayer`. The first layer's lateral convs
    map the input channels to ``out_channels``; later layers have none. Works for any map sizes: a level whose
    size is not half (rounded up) of the finer one is resampled where levels meet.

    Args:
        in_channels: Channels of each backbone output.
        out_channels: Channels of every output level.
        num_outs: Number of output levels.
        start_level: First backbone level used.
        num_repeat: Number of bidirectional layers.
        add_extra_convs: Extra levels by conv + pooling instead of pooling alone.
        no_norm_on_lateral: Leave ``norm_cfg`` off the lateral and fusion convs (the recipe sets False).
        conv_cfg: Conv layer config.
        norm_cfg: Norm layer config (the recipe: GN with 32 groups).
        act_cfg: Activation of the lateral convs (the recipe: none).
        upsample_cfg: ``dict(mode=...)`` of the top-down resampling.
        init_cfg: Initialisation (Xavier-uniform convs, as the published ``init_weights``).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int = 256,
                 num_outs: int = 5,
                 start_level: int = 0,
                 num_repeat: int = 2,
                 add_extra_convs: bool = False,
                 no_norm_on_lateral: bool = True,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg: Optional[dict] = dict(type='Xavier', layer='Conv2d', distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if not 0 <= start_level < len(in_channels):
            raise ValueError(f'RPDBiFPN: start_level={start_level} must index in_channels={in_channels}.')
        used = len(in_channels) - start_level
        if num_outs < used:
            raise ValueError(f'RPDBiFPN: num_outs={num_outs} is fewer than the {used} backbone levels used '
                             f'(in_channels={in_channels}, start_level={start_level}).')
        if num_repeat < 1:
            raise ValueError(f'RPDBiFPN: num_repeat must be >= 1, got {num_repeat}.')
        if not isinstance(add_extra_convs, bool):
            raise ValueError(f'RPDBiFPN: add_extra_convs is True or False, got {add_extra_convs!r}.')
        mode = dict(upsample_cfg).get('mode', 'nearest')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.start_level = start_level
        self.add_extra_convs = add_extra_convs
        num_extra = num_outs - used
        # module names follow the published module, so that its state dicts load without renaming
        self.downsample_convs = nn.ModuleList()
        if add_extra_convs:
            for i in range(num_extra):
                c = in_channels[-1] if i == 0 else out_channels
                self.downsample_convs.append(nn.Sequential(
                    ConvModule(c, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                               inplace=False), nn.MaxPool2d(3, stride=2, padding=1)))
        extra_channels = out_channels if add_extra_convs else in_channels[-1]
        first = in_channels[start_level:] + [extra_channels] * num_extra
        self.bi_fpn = nn.ModuleList(
            BiFPNLayer(first if i == 0 else [out_channels] * num_outs, out_channels,
                       norm_on_convs=not no_norm_on_lateral, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                       upsample_mode=mode) for i in range(num_repeat))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """``num_outs`` maps of ``out_channels``, finest first."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'RPDBiFPN got {len(inputs)} feature maps, configured for {len(self.in_channels)} '
                             f'(in_channels={self.in_channels}); check the backbone out_indices.')
        outs = list(inputs[self.start_level:])
        for i in range(self.num_outs - len(outs)):
            outs.append(self.downsample_convs[i](outs[-1]) if self.add_extra_convs else
                        F.max_pool2d(outs[-1], 3, stride=2, padding=1))
        for layer in self.bi_fpn:
            outs = layer(outs)
        return tuple(outs)
