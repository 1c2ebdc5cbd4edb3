# RepPoints V2 + Focal-T (configs/reppoints_v2/focal_tiny_1x.py: the Swin/Focal BiFPN recipe) on the embedded demo
# data: only data, image size and schedule differ. Trains from scratch on a CPU in a few minutes; boxes only.
# Data: python tools/misc/make_demo_data.py  (data/demo/coco)
_base_ = '../reppoints_v2/focal_tiny_1x.py'

model = dict(backbone=dict(init_cfg=None, drop_path_rate=0.0), bbox_head=dict(num_classes=3))
# the embedded demo COCO data (python tools/misc/make_demo_data.py: data/demo/coco, 3 classes, 160 train and 16 val
# images of 128x128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=False),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=False),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
data_root = 'data/demo/coco/'
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 metainfo=dict(classes=('square', 'disc', 'cross'),
                               palette=[(220, 60, 60), (60, 200, 80), (60, 90, 230)]),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                 metainfo=train_dataloader['dataset']['metainfo'], pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

# 4 epochs of 40 iterations (batch 4): AdamW 1e-3 (10x the COCO recipe's: from scratch, batch 4, minutes), a
# 40-iteration warm-up and a cosine decay to 1e-5, measured on this data (docs/tools.md, "The demo")
train_cfg = dict(max_epochs=4, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type='CosineAnnealingLR', begin=0, end=4, by_epoch=True, T_max=4, eta_min=1e-5)
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=4))
# seeded, so a demo run (and the tests that train it) does the same thing every time on one machine and stack
randomness = dict(seed=0)
