# DINO 4-scale + Focal-T, 12 epochs, COCO: mmdet's DINO recipe (dino-4scale_r50_8xb2-12e_coco.py: AdamW 1e-4, weight
# decay 1e-4, backbone lr x0.1, gradient clip 0.1, multi-scale crops, batch 16) with Focal-T in place of ResNet-50.
# Beyond the paper (it has no DINO results): not trained here; metafile.yml gives params and FLOPs counted here and
# mmdet's Swin reference.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
# strides 8, 16, 32 (stages 2-4, as ResNet's C3-C5) plus the neck's extra stride-64 level; the focal windows and
# expand sizes of the paper's detection setting (configs/mask_rcnn/focal_tiny_1x.py)
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        focal_windows=(15, 13, 9, 7),
        expand_sizes=(3, 3, 3, 3),
        drop_path_rate=0.2,
        out_indices=(1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-is224-ws7.pth')),
    neck=dict(in_channels=[192, 384, 768]))
# The recipe's backbone lr x0.1 key ('backbone') is matched before any shorter key, so every no-decay key here is longer
# and repeats lr_mult=0.1: norms (the blocks' norm1/norm2, downsample, patch-embedding and output norms) and the
# relative position-bias tables (all three by substring) get no weight decay, as in the Swin recipes.
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
