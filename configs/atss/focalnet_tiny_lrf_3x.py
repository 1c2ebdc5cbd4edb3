# ATSS + FocalNet-T (lrf), 3x: the recipe of ./focalnet_tiny_srf_3x.py with the lrf
# backbone (three focal levels). Paper numbers: metafile.yml.
_base_ = './focalnet_tiny_srf_3x.py'
model = dict(backbone=dict(arch='tiny_lrf', init_cfg=dict(checkpoint='checkpoints/focalnet_tiny_lrf.pth')))
