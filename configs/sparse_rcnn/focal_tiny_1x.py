# Sparse R-CNN + Focal-T, 1x, 300 proposals (no paper target; the paper reports 3x only).
# Optimizer: the paper's shared AdamW (lr 1e-4, wd 0.05); the template's clip_grad (max_norm 1) is kept by the merge.
_base_ = ['mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py', '../_base_/focal_common.py']
num_proposals = 300
model = dict(
    backbone={{_base_.focal_tiny_det_backbone}},
    neck=dict(in_channels=[96, 192, 384, 768]),
    rpn_head=dict(num_proposals=num_proposals),
    test_cfg=dict(_delete_=True, rpn=None, rcnn=dict(max_per_img=num_proposals)))
optim_wrapper = {{_base_.focal_optim_wrapper}}
param_scheduler = {{_base_.focal_1x_param_scheduler}}
