# UPerNet + FocalNet-S (srf), ADE20K, 160k iterations: the recipe of ./focalnet_tiny_srf_160k_ade20k.py.
# Paper numbers: metafile.yml.
_base_ = './focalnet_tiny_srf_160k_ade20k.py'
model = dict(
    backbone=dict(arch='small_srf', init_cfg=dict(checkpoint='checkpoints/focalnet_small_srf.pth')))
