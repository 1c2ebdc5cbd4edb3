# The flagship config (Mask R-CNN + Focal-T) on the embedded demo data: data, image size, schedule and the
# proposal/RoI budgets differ. Trains from scratch (no ImageNet checkpoint needed) in about 5 minutes on 2 CPU
# cores (docs/tools.md, "The demo"). Data: python tools/misc/make_demo_data.py  (data/demo/coco)
_base_ = '../mask_rcnn/focal_tiny_1x.py'

model = dict(
    # no drop path: a few hundred steps from scratch need every block
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    # one to three objects per 128x128 image: small proposal/RoI budgets keep a CPU step (batch 4) under 2 s
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=100), rcnn=dict(sampler=dict(num=32))),
    # demo objects never overlap, so boxes overlapping by IoU 0.3 are duplicates (COCO's 0.5 keeps some of them)
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(nms=dict(iou_threshold=0.3))))
# the embedded demo COCO data (python tools/misc/make_demo_data.py: data/demo/coco, 3 classes, 160 train and 16 val
# images of 128x128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
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
