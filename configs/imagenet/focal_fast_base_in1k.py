# Focal-fast-B on ImageNet-1K: the official released classifier, evaluated as in
# focal_fast_tiny_in1k.py.
#   python tools/test.py configs/imagenet/focal_fast_base_in1k.py checkpoints/focalv2-base-useconv-is224-ws7.pth
_base_ = ['./focal_fast_tiny_in1k.py']
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.5,
                  init_cfg=dict(checkpoint='checkpoints/focalv2-base-useconv-is224-ws7.pth')),
    head=dict(in_channels=1024))
