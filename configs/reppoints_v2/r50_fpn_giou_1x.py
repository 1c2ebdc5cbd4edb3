# RepPoints V2, ResNet-50 + FPN(GN), GIoU, 1x: the original repository's reppoints_v2_r50_fpn_giou_1x_coco
# recipe (SGD lr 0.01 for 16 images, grad clip 35, 500-iteration warm-up, single scale 1333x800).
# The original README's result: metafile.yml.
_base_ = [
    '../_base_/models/reppoints_v2_r50_fpn_gn_giou.py', 'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)
