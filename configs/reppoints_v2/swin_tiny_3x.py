# RepPoints V2 + Swin-T (mmdet's SwinTransformer), 3x: the published recipe the Focal paper compares with
# (Swin-Transformer-Object-Detection, reppoitsv2_swin_tiny_patch4_window7_mstrain_480_960_giou_gfocal_bifpn_
# adamw_3x_coco.py; its README: 50.0 box AP, 45 M, 283 G). A reference for anyone with COCO: train it beside
# focal_tiny_3x.py. As published: AdamW 1e-4 (wd 0.05, none on position tables and norms), 500-iteration
# warm-up, steps at 27 and 33 of 36 epochs, batch 16 (8 GPUs x 2); it trained in fp16 (tools/train.py --amp).
_base_ = [
    '../_base_/models/reppoints_v2_bifpn_qfl.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/focal_adamw_1x.py', '../_base_/default_runtime.py'
]
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
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
