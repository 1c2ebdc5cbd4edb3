# ATSS + Focal-T, 1x (no paper target; the paper reports 3x only).
_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'
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
    # same pyramid as the template's 4-input start_level=1, without an unused stage-1 output
    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_output', num_outs=5))
# the schedule of ../_base_/schedules/focal_adamw_1x.py, written out: this config's base is a complete mmdet
# config, which already has these keys
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={
        'relative_position_bias_table': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.)
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
