# RepPoints V2 + Focal-T, 1x (the paper reports 3x only). The model is the Swin/Focal recipe the paper's
# RepPoints V2 rows come from (../_base_/models/reppoints_v2_bifpn_qfl.py: BiFPN, quality focal loss, V2
# assigners) with Focal-T stages 2-4; AdamW and the 1000-iteration warm-up are the Focal paper's; no gradient
# clipping (the recipe has none). The original repository's GIoU + FPN recipe: r50_fpn_giou_*.py.
_base_ = [
    '../_base_/models/reppoints_v2_bifpn_qfl.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/focal_det_schedule_1x.py'
]
model = dict(backbone={{_base_.focal_tiny_det_backbone_c345}})
