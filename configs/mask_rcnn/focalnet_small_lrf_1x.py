# Mask R-CNN + FocalNet-S (lrf), 1x, the FocalNet recipe of ./focalnet_tiny_srf_1x.py. Paper numbers: metafile.yml.
_base_ = './focalnet_tiny_srf_1x.py'
model = dict(
    backbone=dict(arch='small_lrf', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint='checkpoints/focalnet_small_lrf.pth')))
