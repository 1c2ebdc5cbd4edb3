# RepPoints V2 + Focal-T, 3x, multi-scale [480, 800] (the paper's 3x recipe, no crop branch).
# Paper numbers: metafile.yml.
_base_ = './focal_tiny_1x.py'
train_dataloader = dict(dataset=dict(pipeline={{_base_.det_ms_train_pipeline}}))
train_cfg = dict(max_epochs=36)
param_scheduler = {{_base_.focal_3x_param_scheduler}}
