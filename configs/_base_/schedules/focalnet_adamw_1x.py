# The FocalNet paper's detection schedule (microsoft/FocalNet detection configs): AdamW (lr 1e-4, wd 0.05, batch
# 16), no weight decay on the norms (`norm` matches every LayerNorm: norm1, norm2, the patch-embedding and output
# norms; the official key list also names Swin's absolute_pos_embed / relative_position_bias_table, which no
# FocalNet parameter has), 500-iteration linear warm-up from 0.001, steps at epochs 9 and 11 of 12.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'
train_cfg = dict(max_epochs=12)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
