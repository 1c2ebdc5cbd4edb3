# Mask R-CNN + FocalNet-T (lrf), 1x, the FocalNet recipe of ./focalnet_tiny_srf_1x.py. Paper numbers: metafile.yml.
_base_ = './focalnet_tiny_srf_1x.py'
model = dict(
    backbone=dict(arch='tiny_lrf', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/focalnet_tiny_lrf.pth')))
