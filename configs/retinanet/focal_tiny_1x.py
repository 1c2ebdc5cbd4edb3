# RetinaNet + Focal-T, 1x, single scale. Paper numbers: metafile.yml.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/focal_adamw_1x.py', '../_base_/default_runtime.py'
]
# out_indices (1, 2, 3): only the three stages the FPN uses, so DDP sees no unused parameters.
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        focal_windows=(15, 13, 9, 7),
        expand_sizes=(3, 3, 3, 3),
        drop_path_rate=0.2,
        out_indices=(1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-is224-ws7.pth')),
    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_input', num_outs=5))
