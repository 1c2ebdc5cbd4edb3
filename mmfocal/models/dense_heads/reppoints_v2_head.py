"""RepPoints V2 head (Chen et al., NeurIPS 2020) for mmdet 3.x.

RepPoints v1 (init points -> deformable conv -> refined points and classes) plus two
verification branches that are trained as auxiliary tasks and fed back into the features:
corner heatmaps with sub-pixel offsets (also used at test time to snap box corners) and a
class-aware foreground map built from the gt boxes. Written for mmdet 3.3 from the description
in docs/reppoints_v2.md; the detector itself is mmdet's ``RepPointsDetector``.
"""

import inspect
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.ops import DeformConv2d
from mmdet.models.dense_heads import RepPointsHead
from mmdet.models.losses import QualityFocalLoss
from mmdet.models.utils import filter_scores_and_topk, multi_apply
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from mmengine.config import ConfigDict
from mmengine.model import normal_init
from mmengine.structures import InstanceData
from torch import Tensor

from ..task_modules import CornerHeatmapAssigner
from .corner_pool import CornerPoolBlock
from .reppoints_v2_targets import RepPointsV2TargetsMixin

__all__ = ['RepPointsV2Head']

_PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)


class RepPointsV2Head(RepPointsV2TargetsMixin, RepPointsHead):
    """RepPoints V2 head: RepPoints with corner and foreground verification.

    Outputs per FPN level in training: ``cls`` (B, K, H, W), ``pts_init`` and ``pts_refine``
    (B, 2P, H, W; (y, x) pairs in stride units relative to the location), ``hm_score``
    (B, 2, H, W; top-left and bottom-right corner logits), ``hm_offset`` (B, 4, H, W;
    (dx, dy) of each corner in stride units) and ``sem`` (B, K, H, W; foreground logits).
    In eval mode: ``cls``, the refined box (B, 4, H, W), ``hm_score`` and ``hm_offset``.

    Args:
        num_classes: Number of object classes.
        in_channels: Channels of the FPN levels.
        shared_stacked_convs: Convs on the regression tower that feed the verification branches.
        first_kernel_size: Kernel of the corner blocks' branch convs.
        kernel_size: Kernel of the corner blocks' output convs.
        corner_dim: Channels of the corner-pooled branches.
        loss_heatmap: Corner heatmap loss (on sigmoid probabilities).
        loss_offset: Corner offset loss.
        loss_sem: Foreground-map loss (``SEPFocalLoss``).
        transform_method: Points-to-box transform; RepPoints V2 uses ``'exact_minmax'``
            (point 0 is the top-left corner, point 1 the bottom-right one).
        sem_stride: Stride of the foreground map the targets are drawn on.
        corner_snap_levels: For each level, the level whose corner maps snap its boxes at test
            time, or None to leave them. The original snaps strides 16/32 with the stride-8
            maps and 64/128 with the stride-16 maps.
        **kwargs: Passed to :class:`mmdet.models.dense_heads.RepPointsHead`.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 shared_stacked_convs: int = 1,
                 first_kernel_size: int = 3,
                 kernel_size: int = 1,
                 corner_dim: int = 64,
                 loss_heatmap: ConfigType = dict(type='GaussianFocalLoss', alpha=2.0, gamma=4.0, loss_weight=0.25),
                 loss_offset: ConfigType = dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0),
                 loss_sem: ConfigType = dict(type='SEPFocalLoss', gamma=2.0, alpha=0.25, loss_weight=0.1),
                 transform_method: str = 'exact_minmax',
                 sem_stride: int = 8,
                 corner_snap_levels: Optional[Sequence[Optional[int]]] = (None, 0, 0, 1, 1),
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if transform_method not in ('exact_minmax', 'minmax', 'partial_minmax', 'moment'):
            raise ValueError("RepPointsV2Head: transform_method must be 'exact_minmax' (the paper's), 'minmax', "
                             f"'partial_minmax' or 'moment', got {transform_method!r}.")
        # read by _init_layers, which the parent constructor calls
        self.shared_stacked_convs = shared_stacked_convs
        self.first_kernel_size = first_kernel_size
        self.kernel_size = kernel_size
        self.corner_dim = corner_dim
        super().__init__(num_classes=num_classes, in_channels=in_channels, transform_method=transform_method,
                         init_cfg=init_cfg, **kwargs)
        if not self.use_sigmoid_cls:
            raise ValueError('RepPointsV2Head needs a sigmoid classification loss (loss_cls.use_sigmoid=True).')
        if self.use_grid_points:
            raise ValueError('RepPointsV2Head does not support use_grid_points=True.')
        if self.num_points < 2:
            raise ValueError('RepPointsV2Head needs num_points >= 2 (points 0 and 1 are the box corners).')
        num_levels = len(self.point_strides)
        if corner_snap_levels is not None:
            corner_snap_levels = tuple(corner_snap_levels)
            if len(corner_snap_levels) != num_levels or any(
                    lvl is not None and not 0 <= lvl < num_levels for lvl in corner_snap_levels):
                raise ValueError(f'RepPointsV2Head: corner_snap_levels must give, for each of the {num_levels} '
                                 f'levels, None or a level index, got {corner_snap_levels}.')
        self.corner_snap_levels = corner_snap_levels
        self.sem_stride = sem_stride
        self.loss_heatmap = MODELS.build(loss_heatmap)
        self.loss_offset = MODELS.build(loss_offset)
        self.loss_sem = MODELS.build(loss_sem)
        if self.train_cfg:
            hm_cfg = self.train_cfg.get('heatmap', {}).get('assigner', dict(type='CornerHeatmapAssigner'))
            self.hm_assigner = TASK_UTILS.build(hm_cfg)
            # ATSS-style assigners need the per-level candidate counts as their second argument
            self._assigner_takes_levels = {
                stage: 'num_level_priors' in inspect.signature(assigner.assign).parameters
                for stage, assigner in (('init', self.init_assigner), ('refine', self.refine_assigner))}
        else:
            self.hm_assigner = CornerHeatmapAssigner()

    # ------------------------------------------------------------------ layers
    def _init_layers(self) -> None:
        """Towers, verification branches, and the deformable cls/refine convs."""
        # the parent builds the towers and point convs we keep; its two DCNs are replaced below (wider input)
        super()._init_layers()
        conv_kw = dict(padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
        c = self.feat_channels
        self.shared_convs = nn.ModuleList(
            [ConvModule(c, c, 3, **conv_kw) for _ in range(self.shared_stacked_convs)])
        block_kw = dict(corner_dim=self.corner_dim, first_kernel_size=self.first_kernel_size,
                        kernel_size=self.kernel_size, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
        self.corner_tl = CornerPoolBlock(c, ('top', 'left'), **block_kw)
        self.corner_br = CornerPoolBlock(c, ('bottom', 'right'), **block_kw)
        self.corner_tl_score = nn.Conv2d(c, 1, 3, padding=1)
        self.corner_br_score = nn.Conv2d(c, 1, 3, padding=1)
        self.corner_tl_offset = nn.Conv2d(c, 2, 3, padding=1)
        self.corner_br_offset = nn.Conv2d(c, 2, 3, padding=1)
        self.sem_out = nn.Conv2d(c, self.cls_out_channels, 1)
        self.sem_embedding = ConvModule(c, c, 1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
        # the corner maps (2 scores + 4 offsets) are concatenated to the DCN inputs
        fused = c + 6
        self.reppoints_cls_conv = DeformConv2d(fused, self.point_feat_channels, self.dcn_kernel, 1, self.dcn_pad)
        self.reppoints_pts_refine_conv = DeformConv2d(fused, self.point_feat_channels, self.dcn_kernel, 1,
                                                      self.dcn_pad)

    def init_weights(self) -> None:
        """Normal(0.01) on the towers, DCNs and outputs; prior-0.01 biases on the logits.

        The corner blocks and the foreground embedding keep their construction-time init, as in
        the original. A user ``init_cfg`` (e.g. Pretrained) takes over instead.
        """
        if self.init_cfg is not None:
            super().init_weights()
            return
        for m in list(self.cls_convs) + list(self.reg_convs) + list(self.shared_convs):
            normal_init(m.conv, std=0.01)
        for m in (self.reppoints_cls_conv, self.reppoints_pts_init_conv, self.reppoints_pts_init_out,
                  self.reppoints_pts_refine_conv, self.reppoints_pts_refine_out, self.corner_tl_offset,
                  self.corner_br_offset):
            normal_init(m, std=0.01)
        for m in (self.reppoints_cls_out, self.corner_tl_score, self.corner_br_score, self.sem_out):
            normal_init(m, std=0.01, bias=_PRIOR_BIAS)
        self._is_init = True

    # ----------------------------------------------------------------- forward
    def points2bbox(self, pts: Tensor, y_first: bool = True) -> Tensor:
        """Points to boxes; ``'exact_minmax'`` takes point 0 as (x1, y1) and point 1 as (x2, y2).

        Args:
            pts: Point sets (N, 2P, ...) with (y, x) or (x, y) pairs.
            y_first: Whether pairs are (y, x).

        Returns:
            Boxes (N, 4, ...) as (x1, y1, x2, y2).
        """
        if self.transform_method != 'exact_minmax':
            return super().points2bbox(pts, y_first=y_first)
        pairs = pts.view(pts.shape[0], -1, 2, *pts.shape[2:])
        ys = pairs[:, :2, 0] if y_first else pairs[:, :2, 1]
        xs = pairs[:, :2, 1] if y_first else pairs[:, :2, 0]
        return torch.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], dim=1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Forward one FPN level (see the class docstring for the outputs)."""
        cls_feat, pts_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            pts_feat = conv(pts_feat)
        shared = pts_feat
        for conv in self.shared_convs:
            shared = conv(shared)
        sem_score = self.sem_out(shared)
        emb = self.sem_embedding(shared)
        cls_feat = cls_feat + emb
        pts_feat = pts_feat + emb
        corner_feat = shared + emb
        tl = self.corner_tl(corner_feat)
        br = self.corner_br(corner_feat)
        hm_score = torch.cat([self.corner_tl_score(tl), self.corner_br_score(br)], dim=1)
        hm_offset = torch.cat([self.corner_tl_offset(tl), self.corner_br_offset(br)], dim=1)

        pts_init = self.reppoints_pts_init_out(self.relu(self.reppoints_pts_init_conv(pts_feat)))
        grad_mul_init = (1 - self.gradient_mul) * pts_init.detach() + self.gradient_mul * pts_init
        dcn_offset = grad_mul_init - self.dcn_base_offset.type_as(x)
        # raw corner logits, not detached: cls/refine gradients also train the corner branch
        corner_maps = torch.cat([hm_score, hm_offset], dim=1)
        cls_out = self.reppoints_cls_out(
            self.relu(self.reppoints_cls_conv(torch.cat([cls_feat, corner_maps], dim=1), dcn_offset)))
        pts_refine = self.reppoints_pts_refine_out(
            self.relu(self.reppoints_pts_refine_conv(torch.cat([pts_feat, corner_maps], dim=1), dcn_offset)))
        pts_refine = pts_refine + pts_init.detach()
        if self.training:
            return cls_out, pts_init, pts_refine, hm_score, hm_offset, sem_score
        return cls_out, self.points2bbox(pts_refine), hm_score, hm_offset

    # ------------------------------------------------------------------ losses
    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     pts_preds_init: List[Tensor],
                     pts_preds_refine: List[Tensor],
                     hm_scores: List[Tensor],
                     hm_offsets: List[Tensor],
                     sem_scores: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> Dict[str, List[Tensor]]:
        """All RepPoints V2 losses, in fp32 whatever the autocast state.

        Args:
            cls_scores: Per level (B, K, H, W) logits.
            pts_preds_init: Per level (B, 2P, H, W) init points.
            pts_preds_refine: Per level (B, 2P, H, W) refined points.
            hm_scores: Per level (B, 2, H, W) corner logits.
            hm_offsets: Per level (B, 4, H, W) corner offsets.
            sem_scores: Per level (B, K, H, W) foreground logits.
            batch_gt_instances: Gt ``bboxes`` and ``labels`` per image.
            batch_img_metas: Image metas.
            batch_gt_instances_ignore: Ignored boxes per image.

        Returns:
            ``loss_cls``, ``loss_pts_init``, ``loss_pts_refine``, ``loss_heatmap`` and
            ``loss_offset`` per level, and ``loss_sem``.
        """
        device = cls_scores[0].device
        with torch.autocast(device_type=device.type, enabled=False):
            as_fp32 = lambda ts: [t.float() for t in ts]  # noqa: E731
            return self._loss_by_feat_fp32(
                as_fp32(cls_scores), as_fp32(pts_preds_init), as_fp32(pts_preds_refine), as_fp32(hm_scores),
                as_fp32(hm_offsets), as_fp32(sem_scores), batch_gt_instances, batch_img_metas,
                batch_gt_instances_ignore)

    def _loss_by_feat_fp32(self, cls_scores, pts_preds_init, pts_preds_refine, hm_scores, hm_offsets, sem_scores,
                           batch_gt_instances, batch_img_metas, batch_gt_instances_ignore):
        featmap_sizes = [f.shape[-2:] for f in cls_scores]
        device = cls_scores[0].device
        center_list, valid_flag_list = self.get_points(featmap_sizes, batch_img_metas, device)

        # init stage: centres (x, y, stride) for PointAssigner
        init_assigner = self.train_cfg['init']['assigner']['type']
        candidates = center_list if 'Point' in init_assigner else self.centers_to_bboxes(center_list)
        _, _, bbox_gt_init, bbox_weights_init, avg_init = self.get_targets(
            candidates, valid_flag_list, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore, 'init')

        # refine stage: ATSS over the boxes of the detached init points
        shifts = [(self.points2bbox(pts.detach()) * stride).permute(0, 2, 3, 1).flatten(1, 2)
                  for pts, stride in zip(pts_preds_init, self.point_strides)]  # (B, HW, 4) per level
        refine_candidates = [[c[:, :2].repeat(1, 2) + shift[i_img] for c, shift in zip(centers, shifts)]
                             for i_img, centers in enumerate(center_list)]
        labels, label_weights, bbox_gt_refine, bbox_weights_refine, avg_refine = self.get_targets(
            refine_candidates, valid_flag_list, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore,
            'refine')

        corner = self.get_corner_targets(center_list, valid_flag_list, batch_gt_instances)

        losses_cls, losses_init, losses_refine = multi_apply(
            self.loss_by_feat_single, cls_scores, self.offset_to_pts(center_list, pts_preds_init),
            self.offset_to_pts(center_list, pts_preds_refine), labels, label_weights, bbox_gt_init,
            bbox_weights_init, bbox_gt_refine, bbox_weights_refine, self.point_strides,
            avg_factor_init=avg_init, avg_factor_refine=avg_refine)
        losses_hm, losses_offset = multi_apply(
            self._loss_corner_single, hm_scores, hm_offsets, corner['hm_tl'], corner['hm_br'],
            corner['hm_weight'], corner['offset_tl'], corner['offset_br'], corner['offset_weight_tl'],
            corner['offset_weight_br'], avg_tl=corner['avg_tl'], avg_br=corner['avg_br'])

        sem_target, sem_weight = self.get_sem_targets(batch_gt_instances, batch_img_metas, featmap_sizes, device)
        sem_pred = torch.cat([s.reshape(-1) for s in sem_scores])
        loss_sem = self.loss_sem(sem_pred, sem_target, sem_weight, avg_factor=(sem_target > 0).sum())
        return dict(loss_cls=losses_cls, loss_pts_init=losses_init, loss_pts_refine=losses_refine,
                    loss_heatmap=losses_hm, loss_offset=losses_offset, loss_sem=loss_sem)

    def loss_by_feat_single(self, cls_score: Tensor, pts_pred_init: Tensor, pts_pred_refine: Tensor,
                            labels: Tensor, label_weights: Tensor, bbox_gt_init: Tensor, bbox_weights_init: Tensor,
                            bbox_gt_refine: Tensor, bbox_weights_refine: Tensor, stride: int,
                            avg_factor_init: int, avg_factor_refine: int) -> Tuple[Tensor, Tensor, Tensor]:
        """Classification and point losses of one level.

        As mmdet's ``RepPointsHead``, except that with mmdet's ``QualityFocalLoss`` (the Swin/Focal recipe's
        ``RPDQualityFocalLoss``) a positive's class target is the IoU of its refined box with its gt (detached;
        0 for negatives) instead of 1.

        Returns:
            ``loss_cls``, ``loss_pts_init``, ``loss_pts_refine``.
        """
        labels = labels.reshape(-1)
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels).contiguous()
        bbox_pred_init = self.points2bbox(pts_pred_init.reshape(-1, 2 * self.num_points), y_first=False)
        bbox_pred_refine = self.points2bbox(pts_pred_refine.reshape(-1, 2 * self.num_points), y_first=False)
        bbox_gt_refine = bbox_gt_refine.reshape(-1, 4)
        target = labels
        if isinstance(self.loss_cls, QualityFocalLoss):
            pos = (labels >= 0) & (labels < self.num_classes)
            quality = bbox_pred_refine.new_zeros(labels.shape)
            quality[pos] = bbox_overlaps(bbox_pred_refine[pos].detach(), bbox_gt_refine[pos], is_aligned=True)
            target = (labels, quality)
        loss_cls = self.loss_cls(cls_score, target, label_weights.reshape(-1), avg_factor=avg_factor_refine)
        # GIoU on boxes in units of 4 * stride, as RepPoints does
        norm = self.point_base_scale * stride
        loss_init = self.loss_bbox_init(bbox_pred_init / norm, bbox_gt_init.reshape(-1, 4) / norm,
                                        bbox_weights_init.reshape(-1, 4), avg_factor=avg_factor_init)
        loss_refine = self.loss_bbox_refine(bbox_pred_refine / norm, bbox_gt_refine / norm,
                                            bbox_weights_refine.reshape(-1, 4), avg_factor=avg_factor_refine)
        return loss_cls, loss_init, loss_refine

    def _loss_corner_single(self, hm_score: Tensor, hm_offset: Tensor, hm_tl: Tensor, hm_br: Tensor,
                            hm_weight: Tensor, offset_tl: Tensor, offset_br: Tensor, offset_weight_tl: Tensor,
                            offset_weight_br: Tensor, avg_tl: int, avg_br: int) -> Tuple[Tensor, Tensor]:
        """Corner heatmap and offset losses of one level, averaged over the two corners."""
        prob = hm_score.permute(0, 2, 3, 1).reshape(-1, 2).sigmoid()
        offset = hm_offset.permute(0, 2, 3, 1).reshape(-1, 4)
        weight = hm_weight.reshape(-1)
        loss_hm = (self.loss_heatmap(prob[:, 0], hm_tl.reshape(-1), weight=weight, avg_factor=avg_tl)
                   + self.loss_heatmap(prob[:, 1], hm_br.reshape(-1), weight=weight, avg_factor=avg_br)) / 2
        loss_offset = (self.loss_offset(offset[:, :2], offset_tl.reshape(-1, 2), offset_weight_tl.reshape(-1, 2),
                                        avg_factor=avg_tl)
                       + self.loss_offset(offset[:, 2:], offset_br.reshape(-1, 2), offset_weight_br.reshape(-1, 2),
                                          avg_factor=avg_br)) / 2
        return loss_hm, loss_offset

    # --------------------------------------------------------------- inference
    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        hm_scores: List[Tensor],
                        hm_offsets: List[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Boxes from the refined points, corners snapped to the corner maps, then NMS.

        Args:
            cls_scores: Per level (B, K, H, W) logits.
            bbox_preds: Per level (B, 4, H, W) refined boxes in stride units (eval-mode forward).
            hm_scores: Per level (B, 2, H, W) corner logits.
            hm_offsets: Per level (B, 4, H, W) corner offsets.
            batch_img_metas: Image metas (``img_shape``, ``scale_factor``).
            cfg: Test config; ``self.test_cfg`` by default.
            rescale: Map boxes back to the original image size.
            with_nms: Apply NMS.

        Returns:
            One ``InstanceData`` (``bboxes``, ``scores``, ``labels``) per image.
        """
        if len(cls_scores) != len(bbox_preds):
            raise ValueError('predict_by_feat: cls_scores and bbox_preds must have one entry per level.')
        cfg = ConfigDict(self.test_cfg if cfg is None else cfg)
        featmap_sizes = [f.shape[-2:] for f in cls_scores]
        priors = self.prior_generator.grid_priors(featmap_sizes, dtype=cls_scores[0].dtype,
                                                  device=cls_scores[0].device)
        results = []
        for i, meta in enumerate(batch_img_metas):
            results.append(self._predict_single(
                [c[i].detach() for c in cls_scores], [b[i].detach() for b in bbox_preds],
                [h[i].detach() for h in hm_scores], [o[i].detach() for o in hm_offsets], priors, meta, cfg,
                rescale, with_nms))
        return results

    def _predict_single(self, cls_scores: List[Tensor], bbox_preds: List[Tensor], hm_scores: List[Tensor],
                        hm_offsets: List[Tensor], priors: List[Tensor], img_meta: dict, cfg: ConfigDict,
                        rescale: bool, with_nms: bool) -> InstanceData:
        img_shape = img_meta['img_shape']
        nms_pre = cfg.get('nms_pre', -1)
        boxes_all, scores_all, labels_all = [], [], []
        for lvl, (cls_score, bbox_pred, lvl_priors) in enumerate(zip(cls_scores, bbox_preds, priors)):
            scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).sigmoid()
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            scores, labels, _, kept = filter_scores_and_topk(scores, cfg.score_thr, nms_pre,
                                                             dict(bbox_pred=bbox_pred, priors=lvl_priors))
            boxes = self._bbox_decode(kept['priors'], kept['bbox_pred'], self.point_strides[lvl], img_shape)
            src = None if self.corner_snap_levels is None else self.corner_snap_levels[lvl]
            if src is not None and boxes.numel():
                boxes = self.snap_corners(boxes, hm_scores[src], hm_offsets[src], self.point_strides[src],
                                          img_shape)
            boxes_all.append(boxes)
            scores_all.append(scores)
            labels_all.append(labels)
        results = InstanceData(bboxes=torch.cat(boxes_all), scores=torch.cat(scores_all),
                               labels=torch.cat(labels_all))
        return self._bbox_post_process(results=results, cfg=cfg, rescale=rescale, with_nms=with_nms,
                                       img_meta=img_meta)

    @staticmethod
    def snap_corners(boxes: Tensor, hm_score: Tensor, hm_offset: Tensor, stride: int,
                     img_shape: Tuple[int, int]) -> Tensor:
        """Move each box corner to the best corner-map cell of its 2x2 neighbourhood.

        For the top-left corner (x1, y1): ``xi = floor(clamp(x1 / s, 0, W - 2))`` (same for y);
        among cells {yi, yi+1} x {xi, xi+1} the one with the highest top-left probability wins
        and the corner becomes ``(cell + offset) * s``, clamped to the image. Bottom-right alike.
        Maps smaller than 2x2 leave the boxes unchanged.

        Args:
            boxes: Boxes (n, 4) in input pixels.
            hm_score: Corner logits (2, H, W) of the map's level.
            hm_offset: Corner offsets (4, H, W) of that level.
            stride: Stride of that level.
            img_shape: (h, w) of the image for clamping.

        Returns:
            Snapped boxes (n, 4).
        """
        h, w = hm_score.shape[-2:]
        if h < 2 or w < 2:
            return boxes
        prob = hm_score.sigmoid()
        out = []
        for c in range(2):
            x, y = boxes[:, 2 * c], boxes[:, 2 * c + 1]
            xi = (x / stride).clamp(0, w - 2).floor().long()
            yi = (y / stride).clamp(0, h - 2).floor().long()
            cand_y = torch.stack([yi, yi, yi + 1, yi + 1], dim=1)
            cand_x = torch.stack([xi, xi + 1, xi, xi + 1], dim=1)
            best = prob[c][cand_y, cand_x].argmax(dim=1, keepdim=True)
            ny, nx = cand_y.gather(1, best).squeeze(1), cand_x.gather(1, best).squeeze(1)
            out.append(((nx + hm_offset[2 * c, ny, nx]) * stride).clamp(0, img_shape[1]))
            out.append(((ny + hm_offset[2 * c + 1, ny, nx]) * stride).clamp(0, img_shape[0]))
        return torch.stack(out, dim=1)

