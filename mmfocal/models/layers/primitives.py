"""The few generic pieces the blocks need, in plain PyTorch: the token norm, stochastic depth, the
trunc-normal initialisation.

They replace mmcv's ``build_norm_layer`` / ``DropPath`` and mmengine's ``trunc_normal_`` so that the model core
imports with torch alone; each computes (and draws random numbers) exactly as the mmcv / mmengine function it
replaces, so seeded runs and every existing checkpoint are unchanged.
"""

import math
from typing import Optional

import torch
import torch.nn as nn

__all__ = ['DropPath', 'build_norm', 'trunc_normal_']


_LAYER_NORM_TYPES = ('LN', 'LayerNorm')


def build_norm(norm_cfg: Optional[dict], channels: int) -> nn.LayerNorm:
    """The LayerNorm of a ``norm_cfg`` (mmcv's form: ``dict(type='LN', eps=1e-5, requires_grad=True)``).

    Token norms normalise each (B, N, C) token over its channels, so only LayerNorm applies: a batch or group
    norm would need a channel axis the tokens do not have.

    Args:
        norm_cfg: ``type`` ``'LN'`` (or ``'LayerNorm'``), optional ``eps`` (default 1e-5), ``elementwise_affine``
            and ``requires_grad``; None means ``dict(type='LN')``.
        channels: Channels C.

    Raises:
        ValueError: Another norm type or an unknown key.
    """
    cfg = dict(norm_cfg or dict(type='LN'))
    kind = cfg.pop('type', None)
    if kind not in _LAYER_NORM_TYPES:
        raise ValueError(f"norm_cfg type {kind!r}: the Focal token norms are LayerNorms; use dict(type='LN') "
                         "(optionally with eps=..., requires_grad=...).")
    requires_grad = cfg.pop('requires_grad', True)
    cfg.setdefault('eps', 1e-5)
    unknown = set(cfg) - {'eps', 'elementwise_affine'}
    if unknown:
        raise ValueError(f'norm_cfg: unknown keys {sorted(unknown)} for a LayerNorm; it takes eps, '
                         'elementwise_affine and requires_grad.')
    layer = nn.LayerNorm(channels, **cfg)
    for p in layer.parameters():
        p.requires_grad = requires_grad
    return layer


def trunc_normal_(tensor: torch.Tensor, mean: float = 0., std: float = 1., a: float = -2., b: float = 2.
                  ) -> torch.Tensor:
    """Fill ``tensor`` in place from a normal distribution truncated to [a, b], by inverting its CDF.

    One uniform draw per element, mapped through the inverse error function: the draws of mmengine's
    ``trunc_normal_`` (and of torch's before 2.14, whose ``nn.init.trunc_normal_`` now draws differently), so a
    seeded initialisation gives the same weights on every supported torch.

    Args:
        tensor: The tensor to fill.
        mean: Mean of the normal distribution.
        std: Its standard deviation.
        a: Lower bound.
        b: Upper bound.

    Returns:
        ``tensor``.
    """
    def cdf(x: float) -> float:
        return (1. + math.erf(x / math.sqrt(2.))) / 2.

    with torch.no_grad():
        lower, upper = cdf((a - mean) / std), cdf((b - mean) / std)
        tensor.uniform_(2 * lower - 1, 2 * upper - 1)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
    return tensor


class DropPath(nn.Module):
    """Stochastic depth per sample: zero a residual branch with probability ``drop_prob`` in training.

    Args:
        drop_prob: Probability of dropping a sample's branch (the survivors are scaled by 1 / (1 - p)).
    """

    def __init__(self, drop_prob: float = 0.1) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` unchanged in eval mode; in training each sample kept (and rescaled) or zeroed."""
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1. - self.drop_prob
        # floor(keep + U[0, 1)) is 1 with probability keep: mmcv's draw, so seeded runs repeat
        mask = (keep + torch.rand((x.shape[0], ) + (1, ) * (x.ndim - 1), dtype=x.dtype, device=x.device)).floor()
        return x.div(keep) * mask

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'
