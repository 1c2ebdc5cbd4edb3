# Cascade Mask R-CNN + Focal-T, 3x, multi-scale with crop branch. Paper numbers: metafile.yml.
_base_ = './focal_tiny_1x.py'
train_dataloader = dict(dataset=dict(pipeline={{_base_.ins_crop_ms_train_pipeline}}))
train_cfg = dict(max_epochs=36)
param_scheduler = {{_base_.focal_3x_param_scheduler}}
