# Building blocks shared by the mmfocal COCO configs. Only new names (focal_*, *_pipeline), so this file can
# sit beside an mmdet config in a `_base_` list without duplicate keys; configs pick what they need with
# {{_base_.name}}.

custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)

# The paper's AdamW (lr 1e-4, wd 0.05) without decay on bias tables and norms. `relative_position_bias_table`
# matches by substring, so it also covers ..._to_neighbors and ..._to_windows.
focal_optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={
        'absolute_pos_embed': dict(decay_mult=0.),
        'relative_position_bias_table': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.)
    }))
# Focal-T for COCO. focal_windows: the paper's detection setting; the pretrained (7, 5, 3, 1) tables are
# resized on load. expand_sizes (3, 3, 3, 3): stage 4 gets its expand ring at detection resolution (a freshly
# initialised table), which is what matches the paper's parameter counts (README, "Parameter counts").
focal_tiny_det_backbone = dict(
    _delete_=True,
    type='FocalTransformer',
    arch='tiny',
    focal_windows=(15, 13, 9, 7),
    expand_sizes=(3, 3, 3, 3),
    drop_path_rate=0.2,
    out_indices=(0, 1, 2, 3),
    with_cp=False,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-tiny-is224-ws7.pth'))
# Focal-fast-T (v2) for COCO: the released checkpoint's settings (conv embedding, 128 nearest keys per level);
# nothing is resized on load (the nearest-key indices are recomputed per map size).
focal_fast_tiny_det_backbone = dict(
    _delete_=True,
    type='FocalTransformerV2',
    arch='tiny',
    focal_topk=128,
    drop_path_rate=0.2,
    out_indices=(0, 1, 2, 3),
    with_cp=False,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalv2-tiny-useconv-is224-ws7.pth'))
# RetinaNet, ATSS, RepPointsV2: only the three stages the FPN uses, so DDP sees no unused parameters.
focal_tiny_det_backbone_c345 = dict(focal_tiny_det_backbone, out_indices=(1, 2, 3))

focal_1x_param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
_ms_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333), (640, 1333), (672, 1333),
              (704, 1333), (736, 1333), (768, 1333), (800, 1333)]

# RepPointsV2 3x (the Swin/Focal recipe): shorter side drawn from 480-960 in steps of 32, longer side <= 1333.
rpd_ms_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(1333, s) for s in range(480, 961, 32)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]

# RetinaNet, ATSS: shorter side drawn from [480, 800] (paper), no crop branch.
det_ms_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=_ms_scales, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]


def _crop_ms(with_mask):
    # Mask R-CNN, Cascade, Sparse R-CNN: the Swin baselines' DETR-style 50% crop branch.
    return [
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask),
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomChoice', transforms=[
            [dict(type='RandomChoiceResize', scales=_ms_scales, keep_ratio=True)],
            [dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)], keep_ratio=True),
             dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600), allow_negative_crop=True),
             dict(type='RandomChoiceResize', scales=_ms_scales, keep_ratio=True)],
        ]),
        dict(type='PackDetInputs')
    ]


ins_crop_ms_train_pipeline = _crop_ms(True)
det_crop_ms_train_pipeline = _crop_ms(False)
del _crop_ms

focal_3x_param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
