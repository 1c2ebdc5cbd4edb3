# RepPoints V2 + Focal-T, 1x (no paper target; the paper reports 3x only). Head, targets and test settings
# are the original repository's GIoU recipe (../_base_/models/reppoints_v2_r50_fpn_gn_giou.py); backbone,
# AdamW, warm-up and schedule are the Focal paper's, with the original's gradient clipping (max_norm 35).
_base_ = [
    '../_base_/models/reppoints_v2_r50_fpn_gn_giou.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/focal_det_schedule_1x.py'
]
model = dict(
    backbone={{_base_.focal_tiny_det_backbone_c345}},
    # stages 2-4 give strides 8..32 and the extra levels come from the stage-4 input: the R-50 pyramid
    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_input', num_outs=5))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
