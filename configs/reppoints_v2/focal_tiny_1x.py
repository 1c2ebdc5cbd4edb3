# RepPoints V2 + Focal-T, 1x (the paper reports 3x only). The model is the Swin/Focal recipe the paper's
# RepPoints V2 rows come from (../_base_/models/reppoints_v2_bifpn_qfl.py: BiFPN, quality focal loss, V2
# assigners) with Focal-T stages 2-4; AdamW and the 1000-iteration warm-up are the Focal paper's; no gradient
# clipping (the recipe has none). The original repository's GIoU + FPN recipe: r50_fpn_giou_*.py.
_base_ = [
    '../_base_/models/reppoints_v2_bifpn_qfl.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/focal_adamw_1x.py', '../_base_/default_runtime.py'
]
# out_indices (1, 2, 3): only the three stages the FPN uses, so DDP sees no unused parameters.
model = dict(
    backbone=dict(
        _delete_=True,
        type='FocalTransformer',
        arch='tiny',
        focal_windows=(15, 13, 9, 7),
        expand_sizes=(3, 3, 3, 3),
        drop_path_rate=0.2,
        out_indices=(1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-is224-ws7.pth')))
