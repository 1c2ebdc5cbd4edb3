# DINO 4-scale + Focal-T (configs/dino/focal_tiny_4scale_12e.py) on the embedded demo data: data, image size, query
# count and schedule differ. DINO ranks its encoder tokens for its queries, and a 128x128 image has 340 tokens over the
# 4 levels (16x16 + 8x8 + 4x4 + 2x2), fewer than COCO's 900 queries: the demo uses 100 (and 50 denoising queries).
# Trains from scratch (no ImageNet checkpoint needed). Data: python tools/misc/make_demo_data.py  (data/demo/coco)
_base_ = '../dino/focal_tiny_4scale_12e.py'

model = dict(
    num_queries=100,
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    bbox_head=dict(num_classes=3),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=50)),
    test_cfg=dict(max_per_img=100))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
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

# 4 epochs of 40 iterations (batch 4), AdamW 5e-4 (5x the COCO recipe's: from scratch, minutes; the backbone keeps
# the recipe's x0.1), a 10-iteration warm-up
train_cfg = dict(max_epochs=4, val_interval=4)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]
optim_wrapper = dict(optimizer=dict(lr=5e-4))
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=4))
randomness = dict(seed=0)
