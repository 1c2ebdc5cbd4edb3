# RepPoints V2 + Focal-T (configs/reppoints_v2/focal_tiny_1x.py) on the embedded demo data: only data, image
# size and schedule differ. Trains from scratch on a CPU in a few minutes; boxes only (no masks needed).
# Data: python tools/misc/make_demo_data.py  (data/demo/coco, 3 classes, 256x256 images)
_base_ = '../reppoints_v2/focal_tiny_1x.py'

data_root = 'data/demo/coco/'
metainfo = dict(classes=('square', 'disc', 'triangle'),
                palette=[(220, 60, 60), (60, 200, 80), (60, 90, 230)])
model = dict(backbone=dict(init_cfg=None, drop_path_rate=0.1), bbox_head=dict(num_classes=3))

scale = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[5], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=4e-4))
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=max_epochs // 2))
