# RepPoints V2, ResNet-50, GIoU, multi-scale 2x: the original's reppoints_v2_r50_fpn_giou_mstrain_2x_coco
# (shorter side uniform in [480, 960], longer side <= 1333; 24 epochs, steps 16 and 22).
# The original README's result: metafile.yml.
_base_ = './r50_fpn_giou_1x.py'
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=[(1333, 480), (1333, 960)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1)
]
