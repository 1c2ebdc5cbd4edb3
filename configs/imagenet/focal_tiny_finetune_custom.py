# Fine-tune the official Focal-T classifier on a dataset of your own in the ImageNet folder layout:
#   data/custom/train/CLASS/*.jpg, data/custom/val/CLASS/*.jpg   (mmpretrain's CustomDataset: one folder per class)
# Set the number of classes in the head and the data preprocessor (10 here), then
#   python tools/train.py configs/imagenet/focal_tiny_finetune_custom.py
# The backbone starts from checkpoints/focal-tiny-is224-ws7.pth (its ImageNet head is not used); AdamW 1e-4 with
# no weight decay on norms, biases and the relative-position tables, 30 epochs, cosine after a 1-epoch warm-up.
_base_ = ['./focal_tiny_in1k.py']
data_preprocessor = dict(num_classes=10)  # mmpretrain's top-level preprocessor: the ImageNet mean / std, RGB
model = dict(
    backbone=dict(drop_path_rate=0.1),
    head=dict(num_classes=10, loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
]
_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs')
]
train_dataloader = dict(
    _delete_=True, batch_size=32, num_workers=4,
    dataset=dict(type='CustomDataset', data_root='data/custom', data_prefix='train', pipeline=_train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    _delete_=True, batch_size=32, num_workers=4,
    dataset=dict(type='CustomDataset', data_root='data/custom', data_prefix='val', pipeline=_test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(val_dataloader, _delete_=True)
del _train_pipeline, _test_pipeline
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'relative_position_bias_table': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=1)
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
val_cfg = dict()
test_cfg = dict()
