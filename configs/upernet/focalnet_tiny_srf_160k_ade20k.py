# UPerNet + FocalNet-T (srf), ADE20K, 512x512 crops, 160k iterations, batch 16: the FocalNet paper's recipe (mmseg's
# Swin UPerNet recipe: AdamW 6e-5, wd 0.01, poly decay after a 1500-iteration warm-up, FCN auxiliary head on stage
# 3), with the detection kernels (focal_windows=9) and drop path 0.3 for every size. Paper numbers: metafile.yml.
_base_ = ['mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalNet',
        arch='tiny_srf',
        focal_windows=9,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalnet_tiny_srf.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    auxiliary_head=dict(in_channels=384, num_classes=150))
# the official key list names Swin's position tables too, which FocalNet does not have: only the norms remain
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True, norm=dict(decay_mult=0.))))
