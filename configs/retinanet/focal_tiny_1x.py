# RetinaNet + Focal-T, 1x, single scale. Paper numbers: metafile.yml.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/focal_det_schedule_1x.py'
]
model = dict(
    backbone={{_base_.focal_tiny_det_backbone_c345}},
    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_input', num_outs=5))
