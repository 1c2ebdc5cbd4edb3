# Mask2Former + Focal-T, instance segmentation (configs/mask2former/focal_tiny_lsj_50e_coco.py) on the embedded demo
# data: data, image size (128x128 instead of the 1024x1024 jitter crops), class count and schedule differ. Trains from
# scratch (no ImageNet checkpoint needed). Data: python tools/misc/make_demo_data.py  (data/demo/coco)
_base_ = '../mask2former/focal_tiny_lsj_50e_coco.py'

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=(128, 128), img_pad_value=0, pad_mask=True, mask_pad_value=0,
             pad_seg=False)
    ]),
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    panoptic_head=dict(num_things_classes=3, num_stuff_classes=0, loss_cls=dict(class_weight=[1.0] * 3 + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=3, num_stuff_classes=0))
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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

# 160 iterations of batch 4 (4 passes over the 160 images), AdamW 5e-4 (5x the COCO recipe's: from scratch,
# minutes; the backbone keeps the recipe's x0.1), a 10-iteration warm-up
train_cfg = dict(max_iters=160, val_interval=160, dynamic_intervals=None)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]
optim_wrapper = dict(optimizer=dict(lr=5e-4))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=160))
randomness = dict(seed=0)
