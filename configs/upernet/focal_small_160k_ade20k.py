# UPerNet + Focal-S, ADE20K 160k. Paper numbers: metafile.yml.
_base_ = './focal_tiny_160k_ade20k.py'
model = dict(backbone=dict(arch='small', init_cfg=dict(checkpoint='checkpoints/focal-small-useconv-is224-ws7.pth')))
