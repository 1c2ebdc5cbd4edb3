# RepPoints V2 detector, the Swin/Focal recipe (Swin-Transformer-Object-Detection, a90acdda,
# configs/_base_/models/reppointsv2_swin_bifpn.py): backbone stages 2-4, BiFPN (2 layers, GN, P6/P7 by
# max-pooling), the original head with quality focal classification (IoU targets), GIoU with eps 1e-6, and the
# V2 point / heatmap / ATSS assigners. Backbone: mmdet's Swin-T as published; Focal configs swap it. Model only.
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    type='RepPointsDetector',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/SwinTransformer/storage/releases/download/v1.0.0/'
            'swin_tiny_patch4_window7_224.pth')),
    neck=dict(
        type='RPDBiFPN',
        in_channels=[192, 384, 768],
        out_channels=256,
        start_level=0,
        add_extra_convs=False,
        num_outs=5,
        no_norm_on_lateral=False,
        num_repeat=2,
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='RepPointsV2Head',
        num_classes=80,
        in_channels=256,
        feat_channels=256,
        point_feat_channels=256,
        stacked_convs=3,
        shared_stacked_convs=1,
        first_kernel_size=3,
        kernel_size=1,
        corner_dim=64,
        num_points=9,
        gradient_mul=0.1,
        point_strides=[8, 16, 32, 64, 128],
        point_base_scale=4,
        norm_cfg=norm_cfg,
        transform_method='exact_minmax',
        # the recipe's RPDQualityFocalLoss: mmdet's QFL, the head supplies the IoU targets
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        # the recipe's RPDGIoULoss: "+1" widths as the original's GIoU, eps 1e-6 (the original: 1e-7)
        loss_bbox_init=dict(type='LegacyGIoULoss', offset=1.0, eps=1e-6, loss_weight=1.0),
        loss_bbox_refine=dict(type='LegacyGIoULoss', offset=1.0, eps=1e-6, loss_weight=2.0),
        loss_heatmap=dict(type='GaussianFocalLoss', alpha=2.0, gamma=4.0, loss_weight=0.25),
        loss_offset=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0),
        loss_sem=dict(type='SEPFocalLoss', gamma=2.0, alpha=0.25, loss_weight=0.1)),
    train_cfg=dict(
        init=dict(assigner=dict(type='PointAssignerV2', scale=4, pos_num=1), allowed_border=-1, pos_weight=-1,
                  debug=False),
        # the recipe's PointHMAssigner(gaussian_bump=True, gaussian_iou=0.7): the same file as the original's
        heatmap=dict(assigner=dict(type='CornerHeatmapAssigner', gaussian_iou=0.7)),
        refine=dict(assigner=dict(type='ATSSAssignerV2', topk=9), allowed_border=-1, pos_weight=-1, debug=False)),
    test_cfg=dict(
        nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6), max_per_img=100))
