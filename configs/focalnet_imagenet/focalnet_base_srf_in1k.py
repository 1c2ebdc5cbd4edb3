# FocalNet-B (srf) on ImageNet-1K: the official released classifier, evaluated as
# ./focalnet_tiny_srf_in1k.py says:
#   python tools/test.py configs/focalnet_imagenet/focalnet_base_srf_in1k.py checkpoints/focalnet_base_srf.pth
_base_ = './focalnet_tiny_srf_in1k.py'
model = dict(
    backbone=dict(arch='base_srf', drop_path_rate=0.5, init_cfg=dict(checkpoint='checkpoints/focalnet_base_srf.pth')),
    head=dict(in_channels=1024))
