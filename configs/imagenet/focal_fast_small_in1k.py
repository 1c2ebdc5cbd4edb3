# Focal-fast-S on ImageNet-1K: the official released classifier, evaluated as in
# focal_fast_tiny_in1k.py.
#   python tools/test.py configs/imagenet/focal_fast_small_in1k.py checkpoints/focalv2-small-useconv-is224-ws7.pth
_base_ = ['./focal_fast_tiny_in1k.py']
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='checkpoints/focalv2-small-useconv-is224-ws7.pth')))
