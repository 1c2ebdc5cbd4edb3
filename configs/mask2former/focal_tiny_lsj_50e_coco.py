# Mask2Former + Focal-T, COCO instance segmentation, large-scale jitter 1024x1024, 50 epochs (368,750 iterations at
# batch 16): mmdet's Swin-T recipe (mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py: AdamW 1e-4, weight decay 0.05,
# backbone lr x0.1, gradient clip 0.01) with Focal-T in place of Swin-T. Beyond the paper (it has no Mask2Former
# results): not trained here; metafile.yml gives params and FLOPs counted here and mmdet's Swin-T reference.
_base_ = 'mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py'
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
# the paper's detection focal windows and expand sizes (configs/mask_rcnn/focal_tiny_1x.py); drop path as Swin-T's
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        focal_windows=(15, 13, 9, 7),
        expand_sizes=(3, 3, 3, 3),
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-is224-ws7.pth')),
    panoptic_head=dict(in_channels=[96, 192, 384, 768]),
    init_cfg=None)
# mmdet's instance config keeps its panoptic base's segmentation-map folder, which instance training never reads:
# dropped, so that only the folders the run needs must exist
train_dataloader = dict(dataset=dict(data_prefix=dict(_delete_=True, img='train2017/')))
val_dataloader = dict(dataset=dict(data_prefix=dict(_delete_=True, img='val2017/')))
test_dataloader = val_dataloader
# Added to the recipe's keys (backbone lr x0.1, no decay on the query and level embeddings). The 'backbone' key is
# matched before any shorter key, so each backbone key is longer and repeats lr_mult=0.1: no weight decay on the
# norms (the blocks' norm1/norm2, downsample, patch-embedding and output norms) and the position-bias tables.
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'backbone.patch_embed.norm': dict(lr_mult=0.1, decay_mult=0.),
            'downsample.norm': dict(lr_mult=0.1, decay_mult=0.),
            'backbone.norm': dict(lr_mult=0.1, decay_mult=0.),
            'norm1.weight': dict(lr_mult=0.1, decay_mult=0.),
            'norm1.bias': dict(lr_mult=0.1, decay_mult=0.),
            'norm2.weight': dict(lr_mult=0.1, decay_mult=0.),
            'norm2.bias': dict(lr_mult=0.1, decay_mult=0.),
            'relative_position_bias_table': dict(lr_mult=0.1, decay_mult=0.),
        }))
