"""The two box assigners of the RepPoints V2 recipes that mmdet 3.3 does not have in the same form.

* ``PointAssignerV2`` (init stage): for each gt box, the ``pos_num`` points of its level nearest to its centre
  (distance in units of the box's width and height); a point chosen by several gts goes to the nearest. This is
  what mmdet 3.3's ``PointAssigner`` computes gt by gt (a test compares them on random scenes); the vectorised
  form also works when a level has fewer than ``pos_num`` points, where mmdet's raises.
* ``ATSSAssignerV2`` (refine stage): mmdet's ``ATSSAssigner`` except on a level with fewer candidates than
  ``topk``, where the recipe tops the candidate list up with randomly repeated ones of that level. That only
  happens on small images (a 1333x800 COCO image has 77 locations on stride 128), and there it changes the
  mean + std IoU threshold; on every other input the two are equal, which a test checks.
"""

from typing import List, Optional

import torch
from mmdet.models.task_modules.assigners import AssignResult, ATSSAssigner
from mmdet.models.task_modules.assigners.base_assigner import BaseAssigner
from mmengine.structures import InstanceData
from torch import Tensor

__all__ = ['PointAssignerV2', 'ATSSAssignerV2']

_INF = 100000000.0  # mmdet's ATSSAssigner marks non-positives with -this in max_overlaps


def _labels_of(assigned_gt_inds: Tensor, gt_labels: Tensor) -> Tensor:
    """Per-candidate labels: the assigned gt's label, -1 where none."""
    labels = assigned_gt_inds.new_full(assigned_gt_inds.shape, -1)
    pos = assigned_gt_inds > 0
    labels[pos] = gt_labels[assigned_gt_inds[pos] - 1]
    return labels


class PointAssignerV2(BaseAssigner):
    """Nearest points of the gt's level, by size-normalised distance (RepPoints V2's init-stage assigner).

    A gt of width ``w`` and height ``h`` belongs to level ``int((log2(w / scale) + log2(h / scale)) / 2)``
    (truncated towards zero, then clamped to the levels present). Among the points of that level, the
    ``pos_num`` nearest to the gt centre, by ``|((x - cx) / w, (y - cy) / h)|``, become its candidates; a point
    that is a candidate of several gts goes to the nearest of them. Everything else is background (0).

    Args:
        scale: Box size of level 0 (``point_base_scale``).
        pos_num: Candidates per gt.
    """

    def __init__(self, scale: int = 4, pos_num: int = 3) -> None:
        if pos_num < 1:
            raise ValueError(f'PointAssignerV2: pos_num must be >= 1, got {pos_num}.')
        self.scale = scale
        self.pos_num = pos_num

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign gts to points.

        Args:
            pred_instances: ``priors`` of shape (n, 3): x, y, stride.
            gt_instances: ``bboxes`` (k, 4) and ``labels`` (k,).
            gt_instances_ignore: Not used (as in the recipe).

        Returns:
            The assignment: 1-based gt index per point, 0 for background; no overlaps.
        """
        points, gt_bboxes, gt_labels = pred_instances.priors, gt_instances.bboxes, gt_instances.labels
        num_points, num_gts = points.shape[0], gt_bboxes.shape[0]
        assigned = points.new_zeros(num_points, dtype=torch.long)
        if num_gts == 0 or num_points == 0:
            return AssignResult(num_gts, assigned, None, labels=assigned.new_full((num_points, ), -1))
        points_lvl = torch.log2(points[:, 2]).int()
        gt_wh = (gt_bboxes[:, 2:] - gt_bboxes[:, :2]).clamp(min=1e-6)
        gt_lvl = ((torch.log2(gt_wh[:, 0] / self.scale) + torch.log2(gt_wh[:, 1] / self.scale)) / 2).int()
        gt_lvl = gt_lvl.clamp(min=points_lvl.min(), max=points_lvl.max())
        gt_xy = (gt_bboxes[:, :2] + gt_bboxes[:, 2:]) / 2
        inf = torch.finfo(points.dtype).max
        dist = ((points[:, None, :2] - gt_xy[None]) / gt_wh[None]).norm(dim=2)
        dist = dist.masked_fill(points_lvl[:, None] != gt_lvl[None], inf)  # (n, k)
        k = min(self.pos_num, num_points)
        nearest_dist, nearest_idx = dist.topk(k, dim=0, largest=False)  # (k, num_gts)
        # each point keeps only the distances of the gts that chose it, then takes the nearest of those
        chosen = torch.full_like(dist, inf)
        chosen[nearest_idx, torch.arange(num_gts, device=dist.device)] = nearest_dist
        best_dist, best_gt = chosen.min(dim=1)
        pos = best_dist < inf
        assigned[pos] = best_gt[pos] + 1
        return AssignResult(num_gts, assigned, None, labels=_labels_of(assigned, gt_labels))


class ATSSAssignerV2(ATSSAssigner):
    """ATSS (mean + std IoU threshold over the ``topk`` nearest candidates per level), recipe variant.

    Equal to mmdet's :class:`ATSSAssigner` (which it calls) whenever every level has at least ``topk``
    candidates. On a level with ``n < topk`` candidates, the recipe's candidate list is all ``n`` of them plus
    ``topk - n`` repeats drawn at random from the level (without replacement while ``n >= topk - n``, with
    replacement otherwise), the same repeats for every gt; the repeats count in the mean and std of the IoUs.
    The draw uses torch's generator, so a seeded run repeats it.

    Args:
        topk: Candidates per level and gt.
        **kwargs: Passed to :class:`ATSSAssigner` (``iou_calculator``, ``ignore_iof_thr``).
    """

    def __init__(self, topk: int, **kwargs) -> None:
        if kwargs.get('alpha') is not None:
            raise ValueError('ATSSAssignerV2 has no cost-based (alpha) mode; use mmdet\'s ATSSAssigner for it.')
        super().__init__(topk=topk, **kwargs)

    def _topped_up_levels(self, num_level_priors: List[int], device: torch.device) -> List[Optional[Tensor]]:
        """Per level: None when it has ``topk`` candidates, else its indices plus the random repeats."""
        levels, start = [], 0
        for n in num_level_priors:
            if n >= self.topk or n == 0:
                levels.append(None)
            else:
                short = self.topk - n
                if n >= short:
                    extra = torch.randperm(n, device=device)[:short]
                else:
                    extra = torch.randint(n, (short, ), device=device)
                levels.append(start + torch.cat([torch.arange(n, device=device), extra]))
            start += n
        return levels

    def assign(self, pred_instances: InstanceData, num_level_priors: List[int], gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None) -> AssignResult:
        """Assign gts to candidate boxes.

        Args:
            pred_instances: ``priors`` (n, 4) boxes.
            num_level_priors: Candidates per level (they sum to n).
            gt_instances: ``bboxes`` (k, 4) and ``labels`` (k,).
            gt_instances_ignore: ``bboxes`` to ignore (candidates overlapping them by more than
                ``ignore_iof_thr`` are set to -1).

        Returns:
            The assignment, with each candidate's IoU with its gt as ``max_overlaps``.
        """
        priors, gt_bboxes = pred_instances.priors[:, :4], gt_instances.bboxes
        levels = self._topped_up_levels(num_level_priors, priors.device)
        if all(lvl is None for lvl in levels) or gt_bboxes.shape[0] == 0 or priors.shape[0] == 0:
            return super().assign(pred_instances, num_level_priors, gt_instances, gt_instances_ignore)
        num_gt, num_priors = gt_bboxes.shape[0], priors.shape[0]
        overlaps = self.iou_calculator(priors, gt_bboxes)
        assigned = overlaps.new_zeros(num_priors, dtype=torch.long)
        priors_xy = (priors[:, :2] + priors[:, 2:]) / 2
        gt_xy = (gt_bboxes[:, :2] + gt_bboxes[:, 2:]) / 2
        distances = (priors_xy[:, None] - gt_xy[None]).norm(dim=2)
        if (self.ignore_iof_thr > 0 and gt_instances_ignore is not None
                and gt_instances_ignore.bboxes.numel() > 0):
            ignored = self.iou_calculator(priors, gt_instances_ignore.bboxes, mode='iof').max(dim=1).values
            ignored = ignored > self.ignore_iof_thr
            distances[ignored] = _INF
            assigned[ignored] = -1
        candidates, start = [], 0
        for n, topped_up in zip(num_level_priors, levels):
            if topped_up is not None:
                candidates.append(topped_up[:, None].expand(-1, num_gt))
            elif n > 0:
                candidates.append(distances[start:start + n].topk(self.topk, dim=0, largest=False).indices + start)
            start += n
        candidates = torch.cat(candidates)  # (num_candidates, num_gt)
        gt_range = torch.arange(num_gt, device=priors.device)
        cand_overlaps = overlaps[candidates, gt_range]
        threshold = cand_overlaps.mean(0) + cand_overlaps.std(0)
        cand_xy = priors_xy[candidates]  # (num_candidates, num_gt, 2)
        inside = torch.cat([cand_xy - gt_bboxes[None, :, :2], gt_bboxes[None, :, 2:] - cand_xy], dim=2)
        is_pos = (cand_overlaps >= threshold[None]) & (inside.min(dim=2).values > 0.01)
        # a candidate positive for several gts goes to the one it overlaps most
        pos_overlaps = torch.full_like(overlaps, -_INF)
        cand_pos, gt_pos = candidates[is_pos], gt_range[None].expand_as(candidates)[is_pos]
        pos_overlaps[cand_pos, gt_pos] = overlaps[cand_pos, gt_pos]
        max_overlaps, argmax = pos_overlaps.max(dim=1)
        pos = max_overlaps > -_INF
        assigned[pos] = argmax[pos] + 1
        return AssignResult(num_gt, assigned, max_overlaps, labels=_labels_of(assigned, gt_instances.labels))
