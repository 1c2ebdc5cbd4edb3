# The embedded demo COCO data (python tools/misc/make_demo_data.py: data/demo/coco, 3 classes, 160 train and 16
# val images of 128x128) and its CPU schedule, shared by the detection demo configs. Only new names (demo_*), so it
# sits beside a detector config in a `_base_` list; configs pick the parts with {{_base_.demo_*}}.
demo_coco_root = 'data/demo/coco/'
demo_coco_metainfo = dict(classes=('square', 'disc', 'cross'),
                          palette=[(220, 60, 60), (60, 200, 80), (60, 90, 230)])
demo_size = (128, 128)


def _data(with_mask):
    load = dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask)
    train_pipeline = [
        dict(type='LoadImageFromFile'), load,
        dict(type='Resize', scale=demo_size, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=demo_size, keep_ratio=True), load,
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
    ]
    val_dataloader = dict(
        batch_size=1, num_workers=0, persistent_workers=False,
        dataset=dict(data_root=demo_coco_root, metainfo=demo_coco_metainfo, ann_file='annotations/instances_val.json',
                     data_prefix=dict(img='val/'), pipeline=test_pipeline))
    evaluator = dict(ann_file=demo_coco_root + 'annotations/instances_val.json')
    return dict(
        train_dataloader=dict(
            batch_size=4, num_workers=0, persistent_workers=False,
            dataset=dict(data_root=demo_coco_root, metainfo=demo_coco_metainfo,
                         ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                         pipeline=train_pipeline)),
        val_dataloader=val_dataloader, test_dataloader=val_dataloader, val_evaluator=evaluator,
        test_evaluator=evaluator)


demo_coco_boxes = _data(with_mask=False)
demo_coco_masks = _data(with_mask=True)
del _data

# 4 epochs of 40 iterations (batch 4): AdamW 1e-3 (10x the COCO recipe's: from scratch, batch 4, minutes),
# a 40-iteration warm-up and a cosine decay to 1e-5, measured on this data (docs/tools.md, "The demo").
demo_max_epochs = 4
demo_train_cfg = dict(max_epochs=demo_max_epochs, val_interval=demo_max_epochs)
demo_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type='CosineAnnealingLR', begin=0, end=demo_max_epochs, by_epoch=True, T_max=demo_max_epochs,
         eta_min=1e-5)
]
demo_optim_wrapper = dict(optimizer=dict(lr=1e-3))
demo_default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=demo_max_epochs))
