# RepPoints V2 + Focal-T, 3x: the paper's experiment (Swin/Focal recipe, see focal_tiny_1x.py). Shorter side
# drawn from 480-960 in steps of 32 (longer side <= 1333), flip, 36 epochs with steps at 27 and 33.
# Paper numbers: metafile.yml.
_base_ = './focal_tiny_1x.py'
train_dataloader = dict(dataset=dict(pipeline={{_base_.rpd_ms_train_pipeline}}))
train_cfg = dict(max_epochs=36)
param_scheduler = {{_base_.focal_3x_param_scheduler}}
