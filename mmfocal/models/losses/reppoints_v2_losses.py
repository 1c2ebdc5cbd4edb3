"""Losses of RepPoints V2 that mmdet 3.3 does not have.

``SEPFocalLoss`` supervises the foreground-verification map; ``LegacyGIoULoss`` is the GIoU
loss of the original mmdet-2.2 code base, whose "+1" pixel convention matters because
RepPoints applies it to boxes divided by ``4 * stride`` (docs/reppoints_v2.md).
"""

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor

__all__ = ['separate_sigmoid_focal_loss', 'legacy_giou_loss', 'SEPFocalLoss', 'LegacyGIoULoss']


def separate_sigmoid_focal_loss(pred: Tensor,
                                target: Tensor,
                                weight: Tensor,
                                gamma: float = 2.0,
                                alpha: float = 0.25,
                                num_pos: Optional[float] = None) -> Tensor:
    """Sigmoid focal loss with positives and negatives normalised separately.

    Positives (``target == 1``) are averaged with their ``weight`` (1 / box area in RepPoints
    V2); negatives (``target < 1``) are summed and divided by the number of positives.

    Args:
        pred: Logits of any shape.
        target: Binary map, same shape as ``pred``.
        weight: Per-element weight of the positives, same shape as ``pred``.
        gamma: Focusing exponent.
        alpha: Balance between positives (``alpha``) and negatives (``1 - alpha``).
        num_pos: Normaliser of the negative term; defaults to the number of positives.
            Clamped to at least 1 so that images without boxes give a finite loss.

    Returns:
        Scalar loss tensor.
    """
    pred = pred.float()
    target = target.float()
    weight = weight.float()
    pos = target.eq(1)
    neg = target.lt(1)
    prob = pred.sigmoid()
    # -log(sigmoid(x)) == softplus(-x): exact for large |x|, unlike log(p + eps)
    neg_loss = (F.softplus(pred[neg]) * prob[neg].pow(gamma)).sum() * (1 - alpha)
    if num_pos is None:
        num_pos = pos.sum()
    num_pos = torch.as_tensor(num_pos, dtype=pred.dtype, device=pred.device).clamp(min=1)
    loss = neg_loss / num_pos
    if pos.any():
        pos_w = weight[pos]
        pos_loss = (F.softplus(-pred[pos]) * (1 - prob[pos]).pow(gamma) * pos_w).sum() * alpha
        loss = loss + pos_loss / pos_w.sum().clamp(min=torch.finfo(pred.dtype).tiny)
    return loss


def legacy_giou_loss(pred: Tensor, target: Tensor, offset: float = 1.0, eps: float = 1e-7) -> Tensor:
    """Element-wise ``1 - GIoU`` with the legacy ``+offset`` width/height convention.

    Args:
        pred: Boxes (n, 4) as (x1, y1, x2, y2).
        target: Boxes (n, 4).
        offset: Added to every width and height (1.0 in mmdet 2.x, 0.0 in mmdet 3.x).
        eps: Keeps the divisions finite.

    Returns:
        Tensor of shape (n,).
    """
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt + offset).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]
    area_p = (pred[:, 2] - pred[:, 0] + offset) * (pred[:, 3] - pred[:, 1] + offset)
    area_t = (target[:, 2] - target[:, 0] + offset) * (target[:, 3] - target[:, 1] + offset)
    union = area_p + area_t - overlap + eps
    enclose_wh = (torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2]) + offset).clamp(min=0)
    enclose = enclose_wh[:, 0] * enclose_wh[:, 1] + eps
    giou = overlap / union - (enclose - union) / enclose
    return 1 - giou


class SEPFocalLoss(nn.Module):
    """Separate focal loss of RepPoints V2's foreground-verification branch.

    Args:
        gamma: Focusing exponent.
        alpha: Positive/negative balance.
        loss_weight: Multiplier of the loss.
    """

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor, avg_factor: Optional[float] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: Logits, flattened or not.
            target: Binary targets of the same shape.
            weight: Positive weights of the same shape.
            avg_factor: Normaliser of the negative term (number of positives by default).

        Returns:
            Scalar loss.
        """
        return self.loss_weight * separate_sigmoid_focal_loss(
            pred, target, weight, gamma=self.gamma, alpha=self.alpha, num_pos=avg_factor)


class LegacyGIoULoss(nn.Module):
    """GIoU loss with mmdet 2.x's ``+1`` width convention (``offset=1.0``).

    With ``offset=0.0`` it equals mmdet 3.3's ``GIoULoss``. Box weights of shape (n, 4) are
    averaged to (n,), and an all-zero weight returns a zero that keeps the graph, as 3.3 does.

    Args:
        offset: Added to widths and heights.
        eps: Numerical guard.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: Multiplier of the loss.
    """

    def __init__(self, offset: float = 1.0, eps: float = 1e-7, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"LegacyGIoULoss: reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")
        self.offset = offset
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: Predicted boxes (n, 4).
            target: Target boxes (n, 4).
            weight: Weights (n,) or (n, 4).
            avg_factor: Divisor of the summed loss for reduction 'mean'.
            reduction_override: Overrides ``self.reduction``.

        Returns:
            Loss tensor.
        """
        if weight is not None and not torch.any(weight > 0):
            return (pred * weight.reshape(pred.shape[0], -1)).sum() * 0.0
        reduction = reduction_override or self.reduction
        if weight is not None and weight.dim() > 1:
            weight = weight.mean(-1)
        loss = legacy_giou_loss(pred.float(), target.float(), offset=self.offset, eps=self.eps)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
