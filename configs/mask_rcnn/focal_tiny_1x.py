# Mask R-CNN + Focal-T, 1x (12 epochs), single scale 1333x800. Paper (Table 3): 44.8 box / 41.0 mask AP.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/focal_det_schedule_1x.py'
]
pretrained = 'checkpoints/focal-tiny-is224-ws7.pth'  # official ImageNet-1K checkpoint, see README
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        # The paper's detection focal windows; the pretrained (7, 5, 3, 1) tables are resized on load.
        focal_windows=(15, 13, 9, 7),
        # Stage 4 gets its expand ring at detection resolution (fresh table): this is what matches the
        # paper's parameter counts (README, "Parameter counts").
        expand_sizes=(3, 3, 3, 3),
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
