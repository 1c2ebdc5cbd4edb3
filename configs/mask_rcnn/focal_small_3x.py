# Mask R-CNN + Focal-S, 3x (36 epochs), multi-scale [480, 800] with the Swin recipe's crop branch.
_base_ = './focal_tiny_3x.py'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.2, init_cfg=dict(checkpoint='checkpoints/focal-small-is224-ws7.pth')))
