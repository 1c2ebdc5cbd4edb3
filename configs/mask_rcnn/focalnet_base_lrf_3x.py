# Mask R-CNN + FocalNet-B (lrf), 3x (36 epochs, steps at 27 and 33). Paper numbers: metafile.yml.
_base_ = './focalnet_base_lrf_1x.py'
model = dict(backbone=dict(drop_path_rate=0.5))
train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
