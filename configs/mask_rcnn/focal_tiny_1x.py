# Mask R-CNN + Focal-T, 1x (12 epochs), single scale 1333x800. Paper numbers: metafile.yml.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/focal_det_schedule_1x.py'
]
model = dict(
    backbone={{_base_.focal_tiny_det_backbone}},
    neck=dict(in_channels=[96, 192, 384, 768]))
