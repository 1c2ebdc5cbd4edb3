# Mask2Former + Focal-T, semantic segmentation (configs/mask2former/focal_tiny_160k_ade20k.py) on the embedded demo
# data: data, image size, class count and schedule differ (ADE20K's 150 class names are swapped for the demo's 4 through
# BaseSegDataset). Trains from scratch. Data: python tools/misc/make_demo_data.py (data/demo/ade)
_base_ = '../mask2former/focal_tiny_160k_ade20k.py'

data_root = 'data/demo/ade'
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    decode_head=dict(num_classes=4, loss_cls=dict(class_weight=[1.0] * 4 + [0.1])))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
_dataset = dict(type='BaseSegDataset', data_root=data_root, img_suffix='.jpg',
                metainfo=dict(classes=('ground', 'square', 'disc', 'cross'),
                              palette=[(120, 120, 120), (220, 60, 60), (60, 200, 80), (60, 90, 230)]),
                seg_map_suffix='.png', reduce_zero_label=True)
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(_dataset, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(_dataset, data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
                 pipeline=test_pipeline))
del _dataset
test_dataloader = val_dataloader

# 160 iterations of batch 4, AdamW 5e-4 (the backbone keeps the recipe's x0.1), a 10-iteration warm-up
train_cfg = dict(max_iters=160, val_interval=160)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]
optim_wrapper = dict(optimizer=dict(lr=5e-4))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=160))
randomness = dict(seed=0)
