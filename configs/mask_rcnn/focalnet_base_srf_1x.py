# Mask R-CNN + FocalNet-B (srf), 1x, the FocalNet recipe of ./focalnet_tiny_srf_1x.py. Paper numbers: metafile.yml.
_base_ = './focalnet_tiny_srf_1x.py'
model = dict(
    backbone=dict(arch='base_srf', drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='checkpoints/focalnet_base_srf.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
