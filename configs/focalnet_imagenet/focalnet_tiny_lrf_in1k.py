# FocalNet-T (lrf) on ImageNet-1K: the official released classifier, evaluated as
# ./focalnet_tiny_srf_in1k.py says:
#   python tools/test.py configs/focalnet_imagenet/focalnet_tiny_lrf_in1k.py checkpoints/focalnet_tiny_lrf.pth
_base_ = './focalnet_tiny_srf_in1k.py'
model = dict(
    backbone=dict(arch='tiny_lrf', drop_path_rate=0.2, init_cfg=dict(checkpoint='checkpoints/focalnet_tiny_lrf.pth')))
