# Mask R-CNN + Focal-T, 1x (12 epochs), single scale 1333x800. Paper numbers: metafile.yml.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/focal_adamw_1x.py', '../_base_/default_runtime.py'
]
# focal_windows: the paper's detection setting; the pretrained (7, 5, 3, 1) tables are resized on load.
# expand_sizes (3, 3, 3, 3): stage 4 gets its expand ring at detection resolution (a freshly initialised table),
# which is what matches the paper's parameter counts (docs/model_zoo.md).
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        focal_windows=(15, 13, 9, 7),
        expand_sizes=(3, 3, 3, 3),
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-is224-ws7.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
