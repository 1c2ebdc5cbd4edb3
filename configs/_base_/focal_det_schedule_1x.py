# Schedule and runtime of the mmfocal COCO configs built on mmdet's model + dataset bases:
# mmdet's 1x schedule and runtime with the paper's AdamW and a 1000-iteration warm-up, batch 16 (8 x 2).
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py', './focal_common.py']

train_cfg = dict(max_epochs=12)
param_scheduler = {{_base_.focal_1x_param_scheduler}}
optim_wrapper = {{_base_.focal_optim_wrapper}}
auto_scale_lr = dict(enable=False, base_batch_size=16)
