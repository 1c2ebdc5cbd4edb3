# The classification path end to end on the embedded demo set (tools/misc/make_demo_data.py: data/demo/cls, 96 train
# / 24 val images of 64x64, three shapes): the fine-tuning config with 3 classes, trained from scratch on the CPU.
_base_ = ['../imagenet/focal_tiny_finetune_custom.py']
data_preprocessor = dict(num_classes=3)
model = dict(
    backbone=dict(drop_path_rate=0., init_cfg=None),
    head=dict(num_classes=3, topk=(1, ), loss=dict(_delete_=True, type='CrossEntropyLoss')))
train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='data/demo/cls', pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs')
    ]))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='data/demo/cls', pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
# 5 epochs of 6 iterations: AdamW 3e-4 from scratch (1e-3 diverged), a 6-iteration warm-up, cosine decay
optim_wrapper = dict(optimizer=dict(lr=3e-4), clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=6),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0, end=5, T_max=5)
]
train_cfg = dict(max_epochs=5, val_interval=5)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=5))
randomness = dict(seed=0)
