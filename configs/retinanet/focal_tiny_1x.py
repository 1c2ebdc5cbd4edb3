# RetinaNet + Focal-T, 1x, single scale. Paper (Table 3): 43.7 box AP.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/focal_det_schedule_1x.py'
]
pretrained = 'checkpoints/focal-tiny-is224-ws7.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        focal_windows=(15, 13, 9, 7),
        expand_sizes=(3, 3, 3, 3),
        drop_path_rate=0.2,
        out_indices=(1, 2, 3),  # only what the FPN uses, so DDP sees no unused parameters
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_input', num_outs=5))
