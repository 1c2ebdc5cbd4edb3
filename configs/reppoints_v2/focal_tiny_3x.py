# RepPoints V2 + Focal-T, 3x: the paper's experiment (Swin/Focal recipe, see focal_tiny_1x.py). Shorter side
# drawn from 480-960 in steps of 32 (longer side <= 1333), flip, 36 epochs with steps at 27 and 33.
# Paper numbers: metafile.yml.
_base_ = './focal_tiny_1x.py'
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(1333, s) for s in range(480, 961, 32)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
