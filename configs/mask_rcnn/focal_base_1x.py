# Mask R-CNN + Focal-B, 1x. Paper numbers: metafile.yml.
_base_ = './focal_tiny_1x.py'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/focal-base-is224-ws7.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
