"""Training targets of the RepPoints V2 head: point / ATSS assignment per stage, corner heatmaps, foreground maps.

A mixin of :class:`~mmfocal.models.dense_heads.RepPointsV2Head`, kept apart so that the head file holds the
layers, the losses and inference.
"""

import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.utils import images_to_levels, multi_apply, unmap
from mmdet.utils import InstanceList, OptInstanceList
from mmengine.structures import InstanceData
from torch import Tensor

__all__ = ['RepPointsV2TargetsMixin']


class RepPointsV2TargetsMixin:
    """Target computation of RepPoints V2 (needs the head's assigners, strides and ``train_cfg``)."""

    def get_targets(self,
                    proposals_list: List[List[Tensor]],
                    valid_flag_list: List[List[Tensor]],
                    batch_gt_instances: InstanceList,
                    batch_img_metas: List[dict],
                    batch_gt_instances_ignore: OptInstanceList = None,
                    stage: str = 'init',
                    unmap_outputs: bool = True,
                    return_sampling_results: bool = False) -> tuple:
        """Point (init) or ATSS (refine) targets, per level.

        Unlike the parent, the per-level counts of valid candidates reach the assigner
        (``ATSSAssigner`` needs them) and the input lists are not modified.

        Args:
            proposals_list: Per image, per level candidates: points (n, 3) or boxes (n, 4).
            valid_flag_list: Per image, per level valid flags.
            batch_gt_instances: Gt ``bboxes`` and ``labels`` per image.
            batch_img_metas: Image metas.
            batch_gt_instances_ignore: Ignored boxes per image (used only by assigners that read them).
            stage: 'init' or 'refine'.
            unmap_outputs: Kept for signature compatibility; outputs are always unmapped.
            return_sampling_results: Unsupported; must be False.

        Returns:
            ``(labels, label_weights, bbox_gt, bbox_weights, avg_factor)``, the first four as
            per-level lists of (B, n_l, ...) tensors; ``avg_factor`` is the sum over images of
            max(#positives, 1).
        """
        if stage not in ('init', 'refine'):
            raise ValueError(f"stage must be 'init' or 'refine', got {stage!r}")
        if return_sampling_results:
            raise NotImplementedError('RepPointsV2Head.get_targets does not return sampling results.')
        num_level = [p.size(0) for p in proposals_list[0]]
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(batch_img_metas)
        labels, label_weights, bbox_gt, bbox_weights, num_pos = multi_apply(
            self._get_targets_single, [torch.cat(p) for p in proposals_list],
            [torch.cat(f) for f in valid_flag_list], batch_gt_instances, batch_gt_instances_ignore,
            stage=stage, num_level_proposals=num_level)
        avg_factor = sum(max(n, 1) for n in num_pos)
        return (images_to_levels(labels, num_level), images_to_levels(label_weights, num_level),
                images_to_levels(bbox_gt, num_level), images_to_levels(bbox_weights, num_level), avg_factor)

    def _get_targets_single(self,
                            flat_proposals: Tensor,
                            valid_flags: Tensor,
                            gt_instances: InstanceData,
                            gt_instances_ignore: Optional[InstanceData],
                            stage: str = 'init',
                            num_level_proposals: Optional[List[int]] = None,
                            unmap_outputs: bool = True) -> tuple:
        """Targets of one image over all levels (see :meth:`get_targets`)."""
        if not valid_flags.any():
            raise ValueError('RepPointsV2Head: no valid location inside the padded image; check the image size '
                             'and the pad_shape meta.')
        assigner = self.init_assigner if stage == 'init' else self.refine_assigner
        pos_weight = self.train_cfg[stage]['pos_weight']
        proposals = flat_proposals[valid_flags]
        pred_instances = InstanceData(priors=proposals)
        if self._assigner_takes_levels[stage]:
            valid_per_level = [int(f.sum()) for f in torch.split(valid_flags, num_level_proposals)]
            result = assigner.assign(pred_instances, valid_per_level, gt_instances, gt_instances_ignore)
        else:
            result = assigner.assign(pred_instances, gt_instances, gt_instances_ignore)
        n = proposals.shape[0]
        pos = (result.gt_inds > 0).nonzero().squeeze(1)
        neg = (result.gt_inds == 0).nonzero().squeeze(1)
        labels = proposals.new_full((n, ), self.num_classes, dtype=torch.long)
        label_weights = proposals.new_zeros(n)
        bbox_gt = proposals.new_zeros(n, 4)
        bbox_weights = proposals.new_zeros(n, 4)
        if pos.numel():
            gt_idx = result.gt_inds[pos] - 1
            bbox_gt[pos] = gt_instances.bboxes[gt_idx].to(proposals.dtype)
            bbox_weights[pos] = 1.0
            labels[pos] = gt_instances.labels[gt_idx]
            label_weights[pos] = 1.0 if pos_weight <= 0 else pos_weight
        label_weights[neg] = 1.0
        total = flat_proposals.shape[0]
        return (unmap(labels, total, valid_flags, fill=self.num_classes), unmap(label_weights, total, valid_flags),
                unmap(bbox_gt, total, valid_flags), unmap(bbox_weights, total, valid_flags), int(pos.numel()))

    def get_corner_targets(self, points_list: List[List[Tensor]], valid_flag_list: List[List[Tensor]],
                           batch_gt_instances: InstanceList) -> Dict[str, object]:
        """Corner heatmap/offset targets and weights per level, with their normalisers.

        Args:
            points_list: Per image, per level points (n, 3).
            valid_flag_list: Per image, per level valid flags.
            batch_gt_instances: Gt boxes per image.

        Returns:
            Dict with per-level lists ``hm_{tl,br}`` (B, n_l), ``hm_weight`` (B, n_l),
            ``offset_{tl,br}`` (B, n_l, 2), ``offset_weight_{tl,br}`` (B, n_l, 2), and
            ``avg_{tl,br}``: sum over images of max(#positive locations, 1).
        """
        num_level = [p.size(0) for p in points_list[0]]
        per_image: Dict[str, List[Tensor]] = {}
        avg = {'tl': 0, 'br': 0}
        for points, flags, gt in zip(points_list, valid_flag_list, batch_gt_instances):
            points, flags = torch.cat(points), torch.cat(flags)
            targets = self.hm_assigner.assign(points[flags], gt.bboxes)
            total = points.shape[0]
            per_image.setdefault('hm_weight', []).append(flags.float())  # 1 on every valid location
            for c in ('tl', 'br'):
                hm = targets[f'hm_{c}']
                positive = (hm == 1).float()
                avg[c] += max(int(positive.sum()), 1)
                per_image.setdefault(f'hm_{c}', []).append(unmap(hm, total, flags))
                per_image.setdefault(f'offset_{c}', []).append(unmap(targets[f'offset_{c}'], total, flags))
                per_image.setdefault(f'offset_weight_{c}', []).append(
                    unmap(positive[:, None].expand(-1, 2), total, flags))
        out: Dict[str, object] = {k: images_to_levels(v, num_level) for k, v in per_image.items()}
        out['avg_tl'], out['avg_br'] = avg['tl'], avg['br']
        return out

    def get_sem_targets(self, batch_gt_instances: InstanceList, batch_img_metas: List[dict],
                        level_sizes: List[Tuple[int, int]], device: torch.device) -> Tuple[Tensor, Tensor]:
        """Foreground-verification targets from boxes, flattened over levels, classes and images.

        Each box fills, in its class channel of a ``sem_stride`` map, the cells from
        ``floor(x1/s)..floor(x2/s)`` and ``floor(y1/s)..floor(y2/s)`` (inside the image's
        ``pad_shape``) with 1 and weight 1/area; larger boxes are drawn first so smaller ones
        win. Each level takes the map resized by nearest interpolation.

        Args:
            batch_gt_instances: Gt boxes and labels per image.
            batch_img_metas: Image metas (``pad_shape``, ``batch_input_shape``).
            level_sizes: (H, W) of every level.
            device: Device of the targets.

        Returns:
            ``(target, weight)``, each of length sum_l B * K * H_l * W_l in the order of
            ``cat([sem_l.reshape(-1) for sem_l in sem_scores])``.
        """
        s = self.sem_stride
        batch_h, batch_w = batch_img_metas[0]['batch_input_shape']
        base_h, base_w = math.ceil(batch_h / s), math.ceil(batch_w / s)
        k = self.cls_out_channels
        sem_map = torch.zeros(len(batch_img_metas), k, base_h, base_w, device=device)
        sem_weight = torch.zeros_like(sem_map)
        for i, (gt, meta) in enumerate(zip(batch_gt_instances, batch_img_metas)):
            pad_h, pad_w = meta.get('pad_shape', meta['batch_input_shape'])[:2]
            rows, cols = min(int(pad_h / s), base_h), min(int(pad_w / s), base_w)
            boxes = gt.bboxes.detach().float().to(device)
            if boxes.numel() == 0:
                continue
            # a degenerate box would give weight 1/0; one pixel is the smallest area it can cover
            areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=1.0)
            cells = (boxes.clamp(min=0) / s).floor().long().tolist()
            for j in torch.argsort(areas, descending=True).tolist():
                x1, y1, x2, y2 = cells[j]
                label = int(gt.labels[j])
                sem_map[i, label, y1:min(y2 + 1, rows), x1:min(x2 + 1, cols)] = 1.0
                sem_weight[i, label, y1:min(y2 + 1, rows), x1:min(x2 + 1, cols)] = 1.0 / areas[j]
        targets = [F.interpolate(sem_map, size=tuple(size)).reshape(-1) for size in level_sizes]
        weights = [F.interpolate(sem_weight, size=tuple(size)).reshape(-1) for size in level_sizes]
        return torch.cat(targets), torch.cat(weights)
