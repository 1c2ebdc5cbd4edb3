"""CornerNet directional pooling and the corner block of RepPoints V2."""

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from torch import Tensor

__all__ = ['directional_max_pool', 'CornerPoolBlock']

# direction -> (dim, reversed): 'top' looks down the column, 'left' looks right along the row
_DIRECTIONS = {'top': (2, True), 'bottom': (2, False), 'left': (3, True), 'right': (3, False)}


def directional_max_pool(x: Tensor, direction: str) -> Tensor:
    """CornerNet corner pooling as a running maximum.

    ``top``: ``out[i] = max(x[k] for k >= i)`` along H; ``left``: the same along W;
    ``bottom``/``right``: maxima over ``k <= i``.

    Args:
        x: Feature map (B, C, H, W).
        direction: One of 'top', 'bottom', 'left', 'right'.

    Returns:
        Pooled map of the same shape.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f'directional_max_pool: direction must be one of {sorted(_DIRECTIONS)}, got {direction!r}.')
    dim, reverse = _DIRECTIONS[direction]
    if reverse:
        return torch.cummax(x.flip(dim), dim=dim).values.flip(dim)
    return torch.cummax(x, dim=dim).values


class CornerPoolBlock(nn.Module):
    """The corner module of RepPoints V2 (the original's "corner pool pack").

    ``y = ReLU(GN(conv3x3(pool1(a(x)) + pool2(b(x)))) + GN(conv1x1(x)))``, then a
    ConvModule. ``('top', 'left')`` gives the top-left block, ``('bottom', 'right')`` the
    bottom-right one.

    Args:
        channels: Input and output channels.
        directions: The two pooling directions.
        corner_dim: Channels of the pooled branches.
        first_kernel_size: Kernel of the two branch convs.
        kernel_size: Kernel of the output ConvModule.
        conv_cfg: Conv config of the ConvModules.
        norm_cfg: Norm config (GN(32) in RepPoints V2).
    """

    def __init__(self, channels: int, directions: tuple, corner_dim: int = 64, first_kernel_size: int = 3,
                 kernel_size: int = 1, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or dict(type='GN', num_groups=32, requires_grad=True)
        self.directions = tuple(directions)
        pad = (first_kernel_size - 1) // 2
        self.branch1 = ConvModule(channels, corner_dim, first_kernel_size, padding=pad, conv_cfg=conv_cfg,
                                  norm_cfg=norm_cfg)
        self.branch2 = ConvModule(channels, corner_dim, first_kernel_size, padding=pad, conv_cfg=conv_cfg,
                                  norm_cfg=norm_cfg)
        self.pool_conv = nn.Conv2d(corner_dim, channels, 3, padding=1, bias=False)
        self.pool_norm = build_norm_layer(norm_cfg, channels)[1]
        self.skip_conv = nn.Conv2d(channels, channels, 1, bias=False)
        self.skip_norm = build_norm_layer(norm_cfg, channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.out_conv = ConvModule(channels, channels, kernel_size, padding=(kernel_size - 1) // 2,
                                   conv_cfg=conv_cfg, norm_cfg=norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        """Corner-pooled features of the same shape as ``x``."""
        pooled = (directional_max_pool(self.branch1(x), self.directions[0])
                  + directional_max_pool(self.branch2(x), self.directions[1]))
        y = self.relu(self.pool_norm(self.pool_conv(pooled)) + self.skip_norm(self.skip_conv(x)))
        return self.out_conv(y)
