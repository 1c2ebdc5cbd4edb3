# UPerNet + FocalNet-B (lrf), ADE20K, 160k iterations: the recipe of ./focalnet_tiny_srf_160k_ade20k.py.
# Paper numbers: metafile.yml.
_base_ = './focalnet_tiny_srf_160k_ade20k.py'
model = dict(
    backbone=dict(arch='base_lrf', init_cfg=dict(checkpoint='checkpoints/focalnet_base_lrf.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
