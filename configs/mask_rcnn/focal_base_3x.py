# Mask R-CNN + Focal-B, 3x (36 epochs), multi-scale [480, 800] with the Swin recipe's crop branch.
_base_ = './focal_tiny_3x.py'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/focal-base-is224-ws7.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
