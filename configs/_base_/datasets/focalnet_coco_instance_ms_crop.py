# COCO instance segmentation with the FocalNet detectors' training augmentation (the 1x schedules too): flip, then
# one of two policies: short side in {480, 512, ..., 800} (long side <= 1333), or short side in {400, 500, 600},
# an absolute 384-600 crop and again {480, ..., 800} (DETR's recipe, mmdet 2.x AutoAugment in the official configs).
_base_ = 'mmdet::_base_/datasets/coco_instance.py'
_scales = [(s, 1333) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=_scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)], keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600), allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=_scales, keep_ratio=True)],
    ]),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
del _scales
