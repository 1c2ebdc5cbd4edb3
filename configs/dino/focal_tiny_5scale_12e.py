# DINO 5-scale + Focal-T, 12 epochs, COCO: mmdet's 5-scale recipe (dino-5scale_swin-l_8xb2-12e_coco.py) with Focal-T in
# place of Swin-L: strides 4-32 (all four stages) plus the neck's stride-64 level. Beyond the paper: not trained here.
_base_ = 'mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py'
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        focal_windows=(15, 13, 9, 7),
        expand_sizes=(3, 3, 3, 3),
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-is224-ws7.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
# no weight decay on norms and position-bias tables, backbone lr x0.1 (configs/dino/focal_tiny_4scale_12e.py)
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'backbone.patch_embed.norm': dict(lr_mult=0.1, decay_mult=0.),
            'downsample.norm': dict(lr_mult=0.1, decay_mult=0.),
            'backbone.norm': dict(lr_mult=0.1, decay_mult=0.),
            'norm1.weight': dict(lr_mult=0.1, decay_mult=0.),
            'norm1.bias': dict(lr_mult=0.1, decay_mult=0.),
            'norm2.weight': dict(lr_mult=0.1, decay_mult=0.),
            'norm2.bias': dict(lr_mult=0.1, decay_mult=0.),
            'relative_position_bias_table': dict(lr_mult=0.1, decay_mult=0.),
        }))
