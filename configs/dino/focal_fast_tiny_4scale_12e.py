# DINO 4-scale + Focal-fast-T (v2), 12 epochs, COCO: configs/dino/focal_tiny_4scale_12e.py with the v2 backbone and its
# released checkpoint (conv embedding, 128 nearest keys per level). Beyond the paper: not trained here.
_base_ = './focal_tiny_4scale_12e.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformerV2',
        arch='tiny',
        focal_topk=128,
        drop_path_rate=0.2,
        out_indices=(1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalv2-tiny-useconv-is224-ws7.pth')))
# v2 has position-bias MLPs (coord2rpb_all) where v1 has tables: no weight decay on them either
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys=dict(
            _delete_=True,
            **{
                'backbone': dict(lr_mult=0.1),
                'backbone.patch_embed.norm': dict(lr_mult=0.1, decay_mult=0.),
                'downsample.norm': dict(lr_mult=0.1, decay_mult=0.),
                'backbone.norm': dict(lr_mult=0.1, decay_mult=0.),
                'norm1.weight': dict(lr_mult=0.1, decay_mult=0.),
                'norm1.bias': dict(lr_mult=0.1, decay_mult=0.),
                'norm2.weight': dict(lr_mult=0.1, decay_mult=0.),
                'norm2.bias': dict(lr_mult=0.1, decay_mult=0.),
                'coord2rpb': dict(lr_mult=0.1, decay_mult=0.),
            })))
