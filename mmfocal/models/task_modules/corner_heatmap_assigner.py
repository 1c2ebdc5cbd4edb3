"""Corner heatmap targets of RepPoints V2 (the original's ``PointHMAssigner``)."""

from typing import Dict

import torch
from torch import Tensor

__all__ = ['gaussian_radius_tensor', 'CornerHeatmapAssigner']


def gaussian_radius_tensor(heights: Tensor, widths: Tensor, min_overlap: float = 0.7) -> Tensor:
    """CornerNet's Gaussian radius for many boxes at once.

    The smallest of the three quadratic-root radii such that a box whose corners move by the
    radius still has IoU ``min_overlap`` with the original; not rounded, not clamped. Same
    formula as ``mmdet.models.utils.gaussian_radius``, which takes one box at a time.

    Args:
        heights: Box heights (n,).
        widths: Box widths (n,).
        min_overlap: IoU to keep.

    Returns:
        Radii (n,).
    """
    h, w = heights, widths
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 - torch.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 - torch.sqrt(b2 ** 2 - 16 * c2)) / 8
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / (2 * a3)
    return torch.stack([r1, r2, r3], dim=-1).min(dim=-1).values


class CornerHeatmapAssigner:
    """Top-left and bottom-right corner heatmaps and sub-pixel offsets on every level.

    Every gt box gets targets on every level (no scale assignment): a Gaussian bump of
    radius ``gaussian_radius(h, w, gaussian_iou)`` (in image pixels, the same on all levels)
    around each corner, the maximum over boxes, and value exactly 1 at the one location per
    level nearest to the corner, where the offset target ``(corner - location) / stride`` is
    set. When two boxes pick the same location, the later box wins.

    Args:
        gaussian_iou: ``min_overlap`` of the Gaussian radius.
    """

    corners = ('tl', 'br')

    def __init__(self, gaussian_iou: float = 0.7) -> None:
        if not 0.0 < gaussian_iou < 1.0:
            raise ValueError(f'CornerHeatmapAssigner: gaussian_iou must be in (0, 1), got {gaussian_iou}.')
        self.gaussian_iou = gaussian_iou

    def assign(self, points: Tensor, gt_bboxes: Tensor) -> Dict[str, Tensor]:
        """Targets for one image.

        Args:
            points: Valid locations (n, 3) as (x, y, stride), all levels concatenated.
            gt_bboxes: Boxes (k, 4) as (x1, y1, x2, y2) in input pixels.

        Returns:
            ``hm_tl``/``hm_br`` (n,) heatmaps in [0, 1] and ``offset_tl``/``offset_br`` (n, 2)
            offsets (dx, dy) in stride units; positives are where the heatmap equals 1.
        """
        n = points.shape[0]
        out: Dict[str, Tensor] = {}
        for c in self.corners:
            out[f'hm_{c}'] = points.new_zeros(n)
            out[f'offset_{c}'] = points.new_zeros(n, 2)
        if n == 0 or gt_bboxes.shape[0] == 0:
            return out
        gt_bboxes = gt_bboxes.to(points.dtype)
        xy, strides = points[:, :2], points[:, 2]
        radius = gaussian_radius_tensor(gt_bboxes[:, 3] - gt_bboxes[:, 1], gt_bboxes[:, 2] - gt_bboxes[:, 0],
                                        self.gaussian_iou)
        two_sigma_sq = 2 * ((2 * radius + 1) / 6) ** 2
        gt_ids = torch.arange(gt_bboxes.shape[0], device=points.device)
        levels = [strides == s for s in torch.unique(strides)]
        for c, corner in zip(self.corners, (gt_bboxes[:, :2], gt_bboxes[:, 2:])):
            dist = torch.cdist(xy, corner)  # (n, k)
            bump = torch.exp(-dist.pow(2) / two_sigma_sq)
            bump = torch.where(dist < radius, bump, torch.zeros_like(bump))
            heatmap = bump.max(dim=1).values
            offset = out[f'offset_{c}']
            for on_level in levels:
                idx = on_level.nonzero().squeeze(1)
                nearest = idx[dist[idx].argmin(dim=0)]  # (k,) one location per box
                # the highest box index wins a shared location, deterministically
                winner = torch.full((n,), -1, dtype=torch.long, device=points.device)
                winner.scatter_reduce_(0, nearest, gt_ids, reduce='amax')
                hit = (winner >= 0).nonzero().squeeze(1)
                offset[hit] = (corner[winner[hit]] - xy[hit]) / strides[hit, None]
                heatmap[hit] = 1.0
            out[f'hm_{c}'] = heatmap
        return out

