# UPerNet + Focal-T, ADE20K, 512x512 crops, 160k iterations, batch 16. Paper numbers: metafile.yml.
# Backbone: the conv-embedding ("useconv") checkpoint, which is what matches the paper's parameter
# counts (docs/model_zoo.md); focal windows as in detection (the paper does not state them).
_base_ = ['mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py']
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
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-useconv-is224-ws7.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    auxiliary_head=dict(in_channels=384, num_classes=150))
# the Swin recipe's no-decay keys without its absolute_pos_embed, which Focal does not have
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(
        _delete_=True, relative_position_bias_table=dict(decay_mult=0.), norm=dict(decay_mult=0.))))
