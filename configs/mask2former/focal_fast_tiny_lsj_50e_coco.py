# Mask2Former + Focal-fast-T (v2), COCO instance segmentation, LSJ 50 epochs:
# configs/mask2former/focal_tiny_lsj_50e_coco.py with the v2 backbone and its released checkpoint (conv embedding, 128
# nearest keys per level). Beyond the paper: not trained here.
_base_ = './focal_tiny_lsj_50e_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformerV2',
        arch='tiny',
        focal_topk=128,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalv2-tiny-useconv-is224-ws7.pth')))
# the recipe's keys with v2's position-bias MLPs (coord2rpb_all) in place of v1's tables
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys=dict(
            _delete_=True,
            **{
                'backbone': dict(lr_mult=0.1, decay_mult=1.0),
                'query_embed': dict(lr_mult=1.0, decay_mult=0.),
                'query_feat': dict(lr_mult=1.0, decay_mult=0.),
                'level_embed': dict(lr_mult=1.0, decay_mult=0.),
                'backbone.patch_embed.norm': dict(lr_mult=0.1, decay_mult=0.),
                'downsample.norm': dict(lr_mult=0.1, decay_mult=0.),
                'backbone.norm': dict(lr_mult=0.1, decay_mult=0.),
                'norm1.weight': dict(lr_mult=0.1, decay_mult=0.),
                'norm1.bias': dict(lr_mult=0.1, decay_mult=0.),
                'norm2.weight': dict(lr_mult=0.1, decay_mult=0.),
                'norm2.bias': dict(lr_mult=0.1, decay_mult=0.),
                'coord2rpb': dict(lr_mult=0.1, decay_mult=0.),
            })))
