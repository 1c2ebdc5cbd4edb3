# UPerNet + Focal-T (the ADE20K config) on the embedded demo data: data, image size, head widths and schedule
# differ (ADE20K's 150 class names are swapped for the demo's 4 through BaseSegDataset). Trains from scratch in
# about 2 minutes on 2 CPU cores (docs/tools.md, "The demo").
# Data: python tools/misc/make_demo_data.py  (data/demo/ade: ground + 3 shapes, 0 = ignored "other")
_base_ = '../upernet/focal_tiny_160k_ade20k.py'

data_root = 'data/demo/ade'
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    decode_head=dict(num_classes=4, channels=128),
    auxiliary_head=dict(num_classes=4, channels=64))

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

# 160 iterations of batch 4 (4 passes over the 160 images): AdamW 1e-3, 20-iteration warm-up, linear decay
train_cfg = dict(max_iters=160, val_interval=160)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=160, by_epoch=False)
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=160))
# seeded, so a demo run (and the tests that train it) does the same thing every time on one machine and stack
randomness = dict(seed=0)
