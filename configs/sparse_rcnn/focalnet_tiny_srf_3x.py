# Sparse R-CNN + FocalNet-T (srf), 3x, 300 proposals: mmdet's 300-proposal crop / multi-scale 3x recipe, which is
# the official FocalNet one (AdamW lr 2.5e-5, wd 1e-4, gradient clip 1.0), with kernels (11, 9, 9, 7). The norms
# are exempt from weight decay (the official config decays them at 1e-4: no key list). Paper numbers: metafile.yml.
_base_ = 'mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco.py'
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalNet',
        arch='tiny_srf',
        focal_windows=(11, 9, 9, 7),
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalnet_tiny_srf.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
