# Mask2Former + Focal-S, ADE20K 160k: configs/mask2former/focal_tiny_160k_ade20k.py with Focal-S, as mmseg's Swin-S
# recipe is its Swin-T one with Swin-S. Beyond the paper: not trained here.
_base_ = './focal_tiny_160k_ade20k.py'
model = dict(backbone=dict(arch='small', init_cfg=dict(checkpoint='checkpoints/focal-small-useconv-is224-ws7.pth')))
