# UPerNet + Focal-B, ADE20K 160k. Paper numbers: metafile.yml.
_base_ = './focal_tiny_160k_ade20k.py'
model = dict(
    backbone=dict(arch='base', init_cfg=dict(checkpoint='checkpoints/focal-base-useconv-is224-ws7.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
