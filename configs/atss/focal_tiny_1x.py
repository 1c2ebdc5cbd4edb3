# ATSS + Focal-T, 1x (no paper target; the paper reports 3x only).
_base_ = ['mmdet::atss/atss_r50_fpn_1x_coco.py', '../_base_/focal_common.py']
model = dict(
    backbone={{_base_.focal_tiny_det_backbone_c345}},
    # same pyramid as the template's 4-input start_level=1, without an unused stage-1 output
    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_output', num_outs=5))
optim_wrapper = {{_base_.focal_optim_wrapper}}
param_scheduler = {{_base_.focal_1x_param_scheduler}}
