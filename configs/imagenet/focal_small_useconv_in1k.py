# Focal-S (conv stem) on ImageNet-1K: the official released classifier, evaluated as in
# focal_small_in1k.py.
#   python tools/test.py configs/imagenet/focal_small_useconv_in1k.py checkpoints/focal-small-useconv-is224-ws7.pth
_base_ = ['./focal_small_in1k.py']
model = dict(
    backbone=dict(use_conv_embed=True,
                  init_cfg=dict(checkpoint='checkpoints/focal-small-useconv-is224-ws7.pth')))
