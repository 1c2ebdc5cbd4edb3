# Mask2Former + Focal-T, ADE20K semantic segmentation, 512x512 crops, 160k iterations, batch 16: mmseg's Swin-T recipe
# (mask2former_swin-t_8xb2-160k_ade20k-512x512.py: AdamW 1e-4, weight decay 0.05, backbone lr x0.1) with Focal-T in
# place of Swin-T. Beyond the paper (its ADE20K results are UPerNet's): not trained here. Backbone: as
# configs/upernet/focal_tiny_160k_ade20k.py (conv-embedding checkpoint, detection focal windows).
_base_ = 'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        use_conv_embed=True,
        focal_windows=(15, 13, 9, 7),
        expand_sizes=(3, 3, 3, 0),
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-useconv-is224-ws7.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
# added to the recipe's keys (configs/mask2former/focal_tiny_lsj_50e_coco.py says why each repeats lr_mult=0.1)
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'backbone.patch_embed.norm': dict(lr_mult=0.1, decay_mult=0.),
            'downsample.norm': dict(lr_mult=0.1, decay_mult=0.),
            'backbone.norm': dict(lr_mult=0.1, decay_mult=0.),
            'norm1.weight': dict(lr_mult=0.1, decay_mult=0.),
            'norm1.bias': dict(lr_mult=0.1, decay_mult=0.),
            'norm2.weight': dict(lr_mult=0.1, decay_mult=0.),
            'norm2.bias': dict(lr_mult=0.1, decay_mult=0.),
            'relative_position_bias_table': dict(lr_mult=0.1, decay_mult=0.),
        }))
