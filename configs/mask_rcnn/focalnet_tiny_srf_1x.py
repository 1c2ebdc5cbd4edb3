# Mask R-CNN + FocalNet-T (srf), 1x (12 epochs), the FocalNet paper's recipe (multi-scale 480-800 with the crop
# branch, also at 1x). Paper numbers: metafile.yml.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', '../_base_/datasets/focalnet_coco_instance_ms_crop.py',
    '../_base_/schedules/focalnet_adamw_1x.py', '../_base_/default_runtime.py'
]
# focal_windows=9: the detection kernels (9, 11(, 13)); the ImageNet 3 / 5 / 7 kernels are zero-padded to them on
# load, as the official loader does.
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalNet',
        arch='tiny_srf',
        focal_windows=9,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalnet_tiny_srf.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
