# Mask R-CNN + Focal-S, 1x. Paper numbers: metafile.yml.
_base_ = './focal_tiny_1x.py'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.2, init_cfg=dict(checkpoint='checkpoints/focal-small-is224-ws7.pth')))
