# Cascade Mask R-CNN + FocalNet-T (lrf), 3x, the FocalNet recipe: its detection kernels (11, 9, 9, 7) per stage,
# the crop-branch multi-scale training, AdamW 1e-4, steps at 27 and 33; box heads as ./focal_tiny_1x.py (4 conv +
# 1 fc, SyncBN, decoded-box GIoU loss, weight 10: the official FocalNet cascade heads). Paper numbers: metafile.yml.
_base_ = './focal_tiny_3x.py'  # its heads and its crop-branch multi-scale pipeline (the FocalNet one)
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalNet',
        arch='tiny_lrf',
        focal_windows=(11, 9, 9, 7),
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalnet_tiny_lrf.pth')))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True, norm=dict(decay_mult=0.))))
train_cfg = dict(max_epochs=36)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
