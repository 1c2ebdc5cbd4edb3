# Mask R-CNN + Focal-fast-T (v2), 1x (12 epochs), single scale 1333x800: the Focal-T 1x recipe with the faster
# v2 backbone and its released ImageNet-1K checkpoint. The paper has no Focal-fast results: no target numbers.
_base_ = './focal_tiny_1x.py'
# The released checkpoint's settings (conv embedding, 128 nearest keys per level); nothing is resized on load
# (the nearest-key indices are recomputed per map size).
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformerV2',
        arch='tiny',
        focal_topk=128,
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalv2-tiny-useconv-is224-ws7.pth')))
# the recipe's no-decay keys with v2's position-bias MLPs (coord2rpb_all) in place of v1's tables
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(_delete_=True, coord2rpb=dict(decay_mult=0.), norm=dict(decay_mult=0.))))
