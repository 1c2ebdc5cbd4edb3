# UPerNet + Focal-fast-T (v2), ADE20K, 512x512 crops, 160k iterations, batch 16: the Focal-T UPerNet recipe
# with the faster v2 backbone and its released ImageNet-1K checkpoint. The paper has no Focal-fast results:
# no target numbers.
_base_ = './focal_tiny_160k_ade20k.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformerV2',
        arch='tiny',
        focal_topk=128,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalv2-tiny-useconv-is224-ws7.pth')))
# no weight decay on v2's position-bias MLPs (coord2rpb_all, in place of v1's tables) and the norms
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(_delete_=True, coord2rpb=dict(decay_mult=0.), norm=dict(decay_mult=0.))))
