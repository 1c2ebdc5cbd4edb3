"""RepPoints V2 (head, targets, losses, inference) as described in docs/reppoints_v2.md."""

import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.models.utils import gaussian_radius
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmfocal  # noqa: F401  (registers the modules)
from mmfocal.utils.config import build_model
from mmfocal.models.dense_heads import RepPointsV2Head, directional_max_pool
from mmfocal.models.losses import LegacyGIoULoss, SEPFocalLoss, legacy_giou_loss
from mmfocal.models.task_modules import CornerHeatmapAssigner, gaussian_radius_tensor

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
STRIDES = [8, 16, 32, 64, 128]


@pytest.fixture(autouse=True)
def mmdet_scope():
    """Build in mmdet's scope whatever scope earlier tests left as the default."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def small_head(num_classes: int = 4, channels: int = 32, **kwargs) -> RepPointsV2Head:
    """A narrow head with the paper's structure and targets."""
    cfg = dict(
        type='RepPointsV2Head', num_classes=num_classes, in_channels=channels, feat_channels=channels,
        point_feat_channels=channels, corner_dim=16, norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        loss_bbox_init=dict(type='LegacyGIoULoss', loss_weight=1.0),
        loss_bbox_refine=dict(type='LegacyGIoULoss', loss_weight=2.0),
        train_cfg=dict(
            init=dict(assigner=dict(type='PointAssigner', scale=4, pos_num=1), allowed_border=-1, pos_weight=-1),
            heatmap=dict(assigner=dict(type='CornerHeatmapAssigner', gaussian_iou=0.7)),
            refine=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1)),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6),
                      max_per_img=100))
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def feats_for(size: int, batch: int = 2, channels: int = 32, seed: int = 0) -> list:
    """FPN-like features of a ``size`` x ``size`` padded input."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, channels, math.ceil(size / s), math.ceil(size / s), generator=g) for s in STRIDES]


def metas_for(h: int, w: int, pad: int, batch: int = 2) -> list:
    return [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(pad, pad), batch_input_shape=(pad, pad),
                 scale_factor=(1.0, 1.0))] * batch


def gt(boxes, labels) -> InstanceData:
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                        labels=torch.tensor(labels, dtype=torch.long))


TWO_BOXES = gt([[8., 16., 56., 72.], [100., 90., 240., 250.]], [1, 3])


def total(losses: dict) -> torch.Tensor:
    return sum(sum(v) if isinstance(v, (list, tuple)) else v for v in losses.values())


# ----------------------------------------------------------------- shapes
def test_train_and_eval_outputs_per_level() -> None:
    head = small_head()
    feats = feats_for(256)
    outs = head(feats)
    assert len(outs) == 6 and all(len(o) == 5 for o in outs)
    for lvl, f in enumerate(feats):
        h, w = f.shape[-2:]
        assert [o[lvl].shape for o in outs] == [(2, c, h, w) for c in (4, 18, 18, 2, 4, 4)]
    assert head.reppoints_cls_conv.in_channels == head.reppoints_pts_refine_conv.in_channels == 32 + 6
    head.eval()
    with torch.no_grad():
        outs = head(feats)
    assert len(outs) == 4
    assert [o[0].shape[1] for o in outs] == [4, 4, 2, 4]


def test_exact_minmax_takes_points_zero_and_one_as_corners() -> None:
    head = small_head()
    pts = torch.zeros(1, 18)
    pts[0, :4] = torch.tensor([-2., -3., 4., 5.])  # (y0, x0, y1, x1)
    pts[0, 4:] = 100.  # other points never enter the box
    assert head.points2bbox(pts).tolist() == [[-3., -2., 5., 4.]]
    xy = torch.tensor([[-3., -2., 5., 4.] + [100.] * 14])
    assert head.points2bbox(xy, y_first=False).tolist() == [[-3., -2., 5., 4.]]


def test_head_parameters_match_the_original_layer_list() -> None:
    """Count of the original head at C=256, K=80 (layer by layer from its _init_layers)."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/reppoints_v2/r50_fpn_giou_1x.py'))
    head = MODELS.build(cfg.model.bbox_head)
    c, k, d = 256, 80, 64
    conv3 = lambda i, o: i * o * 9  # noqa: E731
    towers = 7 * (conv3(c, c) + 2 * c)  # 3 cls + 3 reg + 1 shared, GN, no bias
    corner = 2 * (2 * (conv3(c, d) + 2 * d) + conv3(d, c) + 2 * c + 2 * (c * c + 2 * c))
    dcn = 2 * conv3(c + 6, c)
    outputs = ((c * k + k) + (conv3(c, c) + c) + 2 * (c * 18 + 18) + 2 * (conv3(c, 1) + 1) + 2 * (conv3(c, 2) + 2)
               + (c * k + k) + (c * c + 2 * c))
    assert sum(p.numel() for p in head.parameters()) == towers + corner + dcn + outputs == 7_210_442


def test_flop_counter_counts_deformable_convs() -> None:
    from mmcv.ops import DeformConv2d
    from mmengine.analysis import FlopAnalyzer

    from mmfocal.utils.complexity import _deform_conv_flop_jit
    conv = DeformConv2d(8, 16, 3, 1, 1).eval()
    analyzer = FlopAnalyzer(conv, (torch.rand(1, 8, 10, 10), torch.zeros(1, 18, 10, 10)))
    analyzer.unsupported_ops_warnings(False)
    analyzer.set_op_handle('prim::PythonOp.DeformConv2dFunction', _deform_conv_flop_jit)
    assert analyzer.total() == 16 * 10 * 10 * 8 * 9


# ------------------------------------------------------------- corner pool
@pytest.mark.parametrize('direction', ['top', 'bottom', 'left', 'right'])
def test_directional_pool_equals_brute_force(direction: str) -> None:
    x = torch.randn(2, 3, 5, 6)
    out = directional_max_pool(x, direction)
    ref = torch.empty_like(x)
    for i in range(5):
        for j in range(6):
            region = {'top': x[:, :, i:, j], 'bottom': x[:, :, :i + 1, j],
                      'left': x[:, :, i, j:], 'right': x[:, :, i, :j + 1]}[direction]
            ref[:, :, i, j] = region.max(dim=-1).values
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    x64 = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: directional_max_pool(t, direction), (x64, ))


def test_directional_pool_rejects_unknown_direction() -> None:
    with pytest.raises(ValueError, match='direction must be one of'):
        directional_max_pool(torch.zeros(1, 1, 2, 2), 'up')


# ---------------------------------------------------------------- targets
def grid_points(size: int) -> torch.Tensor:
    pts = []
    for s in STRIDES:
        n = math.ceil(size / s)
        ys, xs = torch.meshgrid(torch.arange(n) * s, torch.arange(n) * s, indexing='ij')
        pts.append(torch.stack([xs.reshape(-1), ys.reshape(-1), torch.full((n * n, ), s)], 1).float())
    return torch.cat(pts)


def test_gaussian_radius_tensor_equals_mmdet_scalar_formula() -> None:
    hw = torch.tensor([[10., 20.], [3., 150.], [64., 64.], [200., 31.]])
    ours = gaussian_radius_tensor(hw[:, 0], hw[:, 1], 0.7)
    ref = torch.tensor([gaussian_radius((h, w), 0.7) for h, w in hw.tolist()])
    torch.testing.assert_close(ours, ref)


def test_corner_heatmap_targets_for_one_box() -> None:
    points = grid_points(256)
    box = torch.tensor([[37., 45., 150., 171.]])
    t = CornerHeatmapAssigner(0.7).assign(points, box)
    radius = gaussian_radius((171. - 45., 150. - 37.), 0.7)
    for c, corner in (('tl', box[0, :2]), ('br', box[0, 2:])):
        hm, off = t[f'hm_{c}'], t[f'offset_{c}']
        assert hm.min() >= 0 and hm.max() == 1
        dist = (points[:, :2] - corner).norm(dim=1)
        # beyond the radius only the per-level nearest locations (value 1) are non-zero
        assert ((hm[dist >= radius] == 0) | (hm[dist >= radius] == 1)).all()
        assert (hm[(dist < radius) & (hm < 1)] > 0).all()
        for s in STRIDES:
            on = (points[:, 2] == s).nonzero().squeeze(1)
            nearest = on[dist[on].argmin()]
            ones = on[hm[on] == 1]
            assert ones.tolist() == [int(nearest)]  # exactly one positive per level
            expected = (corner - points[nearest, :2]) / s
            torch.testing.assert_close(off[nearest], expected)
            assert expected.abs().max() <= 0.5
        assert (off[hm < 1] == 0).all()


def test_corner_heatmap_targets_without_boxes_are_empty() -> None:
    t = CornerHeatmapAssigner().assign(grid_points(64), torch.zeros(0, 4))
    assert all((v == 0).all() for v in t.values())


def test_assigners_on_two_boxes() -> None:
    """Init: one positive per box on its scale level; refine: ATSS on the init boxes."""
    head = small_head()
    feats = feats_for(256, batch=1)
    metas = metas_for(256, 256, 256, batch=1)
    sizes = [f.shape[-2:] for f in feats]
    centers, valid = head.get_points(sizes, metas, 'cpu')
    _, _, bbox_gt, bbox_w, avg_init = head.get_targets(centers, valid, [TWO_BOXES], metas, None, 'init')
    assert avg_init == 2
    for box in TWO_BOXES.bboxes:
        w, h = (box[2:] - box[:2]).tolist()
        level = int(np.clip((math.log2(w / 4) + math.log2(h / 4)) / 2, 3, 7)) - 3
        pos = (bbox_w[level][0, :, 0] > 0).nonzero().squeeze(1)
        hit = [int(i) for i in pos if torch.equal(bbox_gt[level][0, i], box)]
        assert len(hit) == 1
        cx, cy = ((box[:2] + box[2:]) / 2).tolist()
        pts = centers[0][level]
        d = ((pts[:, 0] - cx) / w) ** 2 + ((pts[:, 1] - cy) / h) ** 2
        assert hit[0] == int(d.argmin())  # nearest location to the centre (gt-normalised distance)
    assert sum(int((w[0, :, 0] > 0).sum()) for w in bbox_w) == 2

    # refine: candidate boxes = init boxes; let every location predict a 4*stride box around itself
    boxes = [[torch.cat([c[:, :2] - 2 * c[:, 2:], c[:, :2] + 2 * c[:, 2:]], 1) for c in centers[0]]]
    labels, label_w, bbox_gt, bbox_w, avg_refine = head.get_targets(boxes, valid, [TWO_BOXES], metas, None,
                                                                    'refine')
    pos_labels = torch.cat([lab[0][w[0, :, 0] > 0] for lab, w in zip(labels, bbox_w)])
    assert set(pos_labels.tolist()) == {1, 3} and avg_refine == len(pos_labels) >= 2
    for lab, lw, bg in zip(labels, label_w, bbox_gt):
        assert (lw == 1).all()  # positives and negatives weighted, pos_weight=-1
        assert ((lab[0] == 4) | torch.isin(lab[0], torch.tensor([1, 3]))).all()


def test_foreground_targets_small_box_wins_and_levels_use_nearest() -> None:
    head = small_head()
    metas = metas_for(64, 64, 64, batch=1)
    boxes = gt([[0., 0., 40., 40.], [8., 8., 20., 20.]], [0, 2])
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    target, weight = head.get_sem_targets([boxes], metas, sizes, torch.device('cpu'))
    lvl0 = target[:4 * 64].view(4, 8, 8)
    w0 = weight[:4 * 64].view(4, 8, 8)
    assert lvl0[0, :6, :6].all() and lvl0[0].sum() == 36  # rows/cols floor(0/8)..floor(40/8)
    assert lvl0[2, 1:3, 1:3].all() and lvl0[2].sum() == 4
    assert lvl0[1].sum() == 0 and lvl0[3].sum() == 0
    torch.testing.assert_close(w0[0, 0, 0], torch.tensor(1 / 1600.))
    torch.testing.assert_close(w0[2, 1, 1], torch.tensor(1 / 144.))
    lvl1 = target[4 * 64:4 * 64 + 4 * 16].view(4, 4, 4)
    torch.testing.assert_close(lvl1, torch.nn.functional.interpolate(lvl0[None], size=(4, 4))[0])


# ------------------------------------------------------------------ losses
def test_sep_focal_loss_matches_hand_computation() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    target = torch.tensor([1.0, 1.0, 0.0, 0.0])
    weight = torch.tensor([0.5, 0.25, 0.0, 0.0])
    p = torch.sigmoid(logits)
    pos = 0.25 * ((1 - p[0]) ** 2 * -torch.log(p[0]) * 0.5 + (1 - p[1]) ** 2 * -torch.log(p[1]) * 0.25) / 0.75
    neg = 0.75 * (p[2] ** 2 * -torch.log(1 - p[2]) + p[3] ** 2 * -torch.log(1 - p[3])) / 2
    torch.testing.assert_close(SEPFocalLoss(loss_weight=0.1)(logits, target, weight), 0.1 * (pos + neg))
    # no positives: negatives only, normalised by 1 instead of dividing by zero
    loss = SEPFocalLoss()(logits[2:], target[2:], weight[2:])
    torch.testing.assert_close(loss, neg * 2)


def test_legacy_giou_loss_matches_hand_computation() -> None:
    pred = torch.tensor([[0., 0., 2., 2.]])
    target = torch.tensor([[1., 1., 3., 3.]])
    # +1 convention: areas 9 and 9, overlap 2x2=4, union 14, enclosure 4x4=16
    expected = 1 - (4 / 14 - (16 - 14) / 16)
    torch.testing.assert_close(legacy_giou_loss(pred, target), torch.tensor([expected]), atol=1e-6, rtol=0)
    # offset 0 is mmdet 3.x's GIoU: overlap 1, union 7, enclosure 9
    from mmdet.models.losses import GIoULoss
    torch.testing.assert_close(LegacyGIoULoss(offset=0.0)(pred, target), GIoULoss()(pred, target))
    zero = LegacyGIoULoss()(pred.requires_grad_(), target, weight=torch.zeros(1, 4))
    assert zero.item() == 0 and zero.requires_grad


def test_inverted_init_boxes_keep_targets_and_losses_finite() -> None:
    """exact_minmax boxes can be inverted early in training; nothing may sort or reject them."""
    head = small_head()
    cls, pts_init, pts_refine, hm, off, sem = head(feats_for(128))

    def invert(p: torch.Tensor) -> torch.Tensor:
        # point 0 (top-left) at (+3, +3) and point 1 (bottom-right) at (-3, -3) stride units
        return torch.cat([torch.full_like(p[:, :2], 3.), torch.full_like(p[:, 2:4], -3.), p[:, 4:]], 1)

    inverted_init = [invert(p) for p in pts_init]
    assert (head.points2bbox(inverted_init[0])[:, 2] < head.points2bbox(inverted_init[0])[:, 0]).all()
    losses = head.loss_by_feat(cls, inverted_init, [invert(p) for p in pts_refine], hm, off, sem,
                               [TWO_BOXES, TWO_BOXES], metas_for(128, 128, 128))
    assert torch.isfinite(total(losses))


def test_losses_finite_and_every_parameter_gets_a_gradient() -> None:
    head = small_head()
    outs = head(feats_for(256))
    losses = head.loss_by_feat(*outs, [TWO_BOXES, TWO_BOXES[:1]], metas_for(250, 256, 256))
    assert set(losses) == {'loss_cls', 'loss_pts_init', 'loss_pts_refine', 'loss_heatmap', 'loss_offset',
                           'loss_sem'}
    for name, value in losses.items():
        value = sum(value) if isinstance(value, (list, tuple)) else value
        assert torch.isfinite(value) and value > 0, name
    total(losses).backward()
    no_grad = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad


def test_losses_with_images_without_boxes() -> None:
    head = small_head()
    outs = head(feats_for(128))
    empty = gt([], [])
    losses = head.loss_by_feat(*outs, [empty, empty], metas_for(128, 128, 128))
    flat = {k: sum(v) if isinstance(v, (list, tuple)) else v for k, v in losses.items()}
    assert all(torch.isfinite(v) for v in flat.values())
    assert flat['loss_pts_init'] == 0 and flat['loss_pts_refine'] == 0 and flat['loss_offset'] == 0
    assert flat['loss_cls'] > 0 and flat['loss_heatmap'] > 0 and flat['loss_sem'] > 0
    total(losses).backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


def test_losses_are_fp32_under_bf16_autocast() -> None:
    head = small_head()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = head(feats_for(128))
        losses = head.loss_by_feat(*outs, [TWO_BOXES, TWO_BOXES], metas_for(128, 128, 128))
    for value in losses.values():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            assert v.dtype == torch.float32 and torch.isfinite(v)


# --------------------------------------------------------------- inference
def test_snap_corners_moves_to_the_peak_with_its_offset() -> None:
    score = torch.full((2, 8, 8), -10.)
    offset = torch.zeros(4, 8, 8)
    score[0, 3, 2] = 10.  # TL peak at cell (y=3, x=2)
    offset[0:2, 3, 2] = torch.tensor([0.25, -0.5])  # (dx, dy)
    score[1, 6, 6] = 10.
    offset[2:4, 6, 6] = torch.tensor([0.1, 0.2])
    boxes = torch.tensor([[17., 26., 50., 52.]])  # TL cell (3, 2) window holds the peak; BR window (6, 6)
    out = RepPointsV2Head.snap_corners(boxes, score, offset, 8, (64, 64))
    torch.testing.assert_close(out, torch.tensor([[(2 + 0.25) * 8, (3 - 0.5) * 8, 6.1 * 8, 6.2 * 8]]))
    far = torch.tensor([[60., 60., 63., 63.]])  # TL window (6..7, 6..7) holds no TL peak: best of equals = first
    assert RepPointsV2Head.snap_corners(far, score, offset, 8, (64, 64))[0, 0] == 6 * 8
    tiny = torch.zeros(2, 1, 5)
    assert torch.equal(RepPointsV2Head.snap_corners(boxes, tiny, torch.zeros(4, 1, 5), 8, (64, 64)), boxes)


def test_prediction_snaps_levels_one_to_four_from_the_right_maps(monkeypatch) -> None:
    head = small_head()
    head.eval()
    calls = []
    original = RepPointsV2Head.snap_corners

    def spy(boxes, hm_score, hm_offset, stride, img_shape):
        calls.append(stride)
        return original(boxes, hm_score, hm_offset, stride, img_shape)

    monkeypatch.setattr(RepPointsV2Head, 'snap_corners', staticmethod(spy))
    with torch.no_grad():
        cls, box, hm, off = head(feats_for(256, batch=1))
    cls = [torch.full_like(c, 5.) for c in cls]  # every location above score_thr
    head.predict_by_feat(cls, box, hm, off, batch_img_metas=metas_for(256, 256, 256, batch=1))
    assert calls == [8, 8, 16, 16]  # level 0 untouched; 1-2 use stride-8 maps, 3-4 stride-16


def test_predict_returns_at_most_100_sorted_boxes_inside_the_image() -> None:
    head = small_head(num_classes=3)
    head.eval()
    with torch.no_grad():
        cls, box, hm, off = head(feats_for(256, batch=2, seed=3))
        cls = [c * 0 + torch.randn_like(c) * 3 for c in cls]
        metas = [dict(m, scale_factor=(0.5, 0.5)) for m in metas_for(200, 240, 256)]
        results = head.predict_by_feat(cls, box, hm, off, batch_img_metas=metas, rescale=True)
    for res in results:
        assert 0 < len(res) <= 100
        assert (res.scores >= 0).all() and (res.scores <= 1).all()
        assert torch.equal(res.scores, res.scores.sort(descending=True).values)
        assert (res.bboxes[:, 0::2] <= 240 / 0.5).all() and (res.bboxes >= 0).all()
        assert set(res.labels.tolist()) <= {0, 1, 2}


def test_invalid_arguments_are_reported() -> None:
    with pytest.raises(ValueError, match='corner_snap_levels'):
        small_head(corner_snap_levels=(None, 0))
    with pytest.raises(ValueError, match='transform_method'):
        small_head(transform_method='box')
    with pytest.raises(ValueError, match='gaussian_iou'):
        CornerHeatmapAssigner(1.5)


# ------------------------------------------------------------ full detector
def tiny_detector_cfg(config: str = 'r50_fpn_giou_1x.py') -> Config:
    """A shipped RepPoints V2 config with a narrow ResNet-18 and narrow neck and head."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/reppoints_v2', config))
    gn = dict(type='GN', num_groups=8, requires_grad=True)
    cfg.model.backbone = dict(type='ResNet', depth=18, base_channels=8, num_stages=4, out_indices=(1, 2, 3),
                              norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch')
    cfg.model.neck.update(in_channels=[16, 32, 64], out_channels=32, start_level=0, norm_cfg=gn)
    cfg.model.bbox_head.update(num_classes=2, in_channels=32, feat_channels=32, point_feat_channels=32,
                               corner_dim=16, norm_cfg=gn)
    return cfg


def synthetic_batch(model) -> dict:
    """Two 128x128 images with bright rectangles (class 0) and dark ones (class 1)."""
    rng = np.random.RandomState(0)
    boxes_per_image = [[[10, 14, 70, 90, 0], [80, 30, 120, 70, 1]], [[30, 40, 110, 120, 1]]]
    inputs, samples = [], []
    for boxes in boxes_per_image:
        img = rng.randint(90, 130, (3, 128, 128)).astype(np.uint8)
        for x1, y1, x2, y2, label in boxes:
            img[:, y1:y2, x1:x2] = 240 if label == 0 else 10
        inputs.append(torch.from_numpy(img))
        sample = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1., 1.)))
        arr = torch.tensor(boxes, dtype=torch.float32)
        sample.gt_instances = InstanceData(bboxes=arr[:, :4], labels=arr[:, 4].long())
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_r50_and_focal_configs_compute_losses_and_predict() -> None:
    """Configs as shipped (R-50 and a Focal-T 1x with fewer blocks to stay quick)."""
    for name in ('r50_fpn_giou_1x.py', 'focal_tiny_1x.py'):
        cfg = Config.fromfile(osp.join(REPO, 'configs/reppoints_v2', name))
        cfg.model.backbone.init_cfg = None
        if cfg.model.backbone.type == 'FocalTransformer':
            cfg.model.backbone.depths = (1, 1, 1, 1)
        model = build_model(cfg)
        model.init_weights()
        batch = synthetic_batch(model)
        model.train()
        data = model.data_preprocessor(batch, True)
        losses = model.loss(data['inputs'], data['data_samples'])
        assert all(torch.isfinite(sum(v) if isinstance(v, list) else v) for v in losses.values())
        model.eval()
        with torch.no_grad():
            results = model.test_step(synthetic_batch(model))
        assert len(results) == 2 and all(len(r.pred_instances) <= 100 for r in results)


@pytest.mark.slow
@pytest.mark.parametrize('config', ['r50_fpn_giou_1x.py', 'focal_tiny_1x.py'])  # GIoU-FPN and BiFPN-QFL recipes
def test_detector_overfits_a_tiny_set_and_finds_its_boxes(config: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_detector_cfg(config))
    model.init_weights()
    batch = synthetic_batch(model)
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = []
    for _ in range(150):
        model.train()
        data = model.data_preprocessor(batch, True)
        losses = model.loss(data['inputs'], data['data_samples'])
        loss = total(losses)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
        optim.step()
        history.append({k: float(sum(v) if isinstance(v, list) else v) for k, v in losses.items()})
    first, last = history[0], history[-1]
    assert sum(last.values()) < 0.3 * sum(first.values()), (first, last)
    # the quality focal loss starts near zero by construction (IoU targets of untrained boxes are ~0) and rises as
    # the boxes get better, so only the focal loss of the GIoU recipe has to fall
    falling = ('loss_pts_refine', 'loss_heatmap') + (('loss_cls', ) if config.startswith('r50') else ())
    for key in falling:
        assert last[key] < first[key], key
    model.eval()
    with torch.no_grad():
        results = model.test_step(synthetic_batch(model))
    found = 0
    for res, sample in zip(results, batch['data_samples']):
        gt_boxes = sample.gt_instances.bboxes
        pred = res.pred_instances
        assert len(pred) <= 100 and ((pred.scores >= 0) & (pred.scores <= 1)).all()
        for box, label in zip(gt_boxes, sample.gt_instances.labels):
            same = pred.labels == label
            if same.any():
                found += int(bbox_overlaps(box[None], pred.bboxes[same][:1]).max() >= 0.7)
    assert found == 3, f'{found} of 3 boxes matched (IoU >= 0.7) by the top-scoring box of their class'


# ------------------------------------------- the Swin/Focal recipe (BiFPN, QFL, V2 assigners)
def _published_bifpn_params(in_channels: list, out: int, num_outs: int, repeat: int, gn: bool) -> int:
    """Layer-by-layer count of Swin-Transformer-Object-Detection's BiFPN (no extra convs): the first layer maps
    every input (extra levels = the last input pooled) by a 1x1 conv, unless it already has ``out`` channels;
    each layer has 2 (L - 1) fusion 3x3 convs and fusion weights of 2, 3, ..., 3, 2 inputs."""
    norm = 2 * out if gn else 0
    bias = 0 if gn else out
    fusion = 2 * (num_outs - 1) * (9 * out * out + norm + bias) + 2 * (num_outs - 1) + 3 * (num_outs - 2) + 2
    first_inputs = in_channels + [in_channels[-1]] * (num_outs - len(in_channels))
    laterals = sum(c * out + norm + bias for c in first_inputs if c != out)
    return laterals + repeat * fusion


@pytest.mark.parametrize('gn', [True, False])
def test_bifpn_parameter_count_equals_the_published_module(gn: bool) -> None:
    from mmfocal.models.necks import RPDBiFPN
    norm = dict(type='GN', num_groups=32, requires_grad=True) if gn else None
    neck = RPDBiFPN([192, 384, 768], 256, num_outs=5, num_repeat=2, no_norm_on_lateral=not gn, norm_cfg=norm)
    count = sum(p.numel() for p in neck.parameters())
    assert count == _published_bifpn_params([192, 384, 768], 256, 5, 2, gn)
    if gn:  # the recipe's neck for Focal-T / Swin-T stages 2-4
        assert count == 10_185_254  # about 10.19 M


@pytest.mark.parametrize('size', [(97, 131), (100, 100), (223, 321), (64, 33)])
def test_bifpn_shapes_at_odd_sizes_and_fusion_weights_learn(size) -> None:
    from mmfocal.models.necks import RPDBiFPN
    torch.manual_seed(0)
    neck = RPDBiFPN([8, 16, 32], 16, num_outs=5, num_repeat=2, no_norm_on_lateral=False,
                    norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    neck.init_weights()
    h, w = size
    # stage maps of a stride-8/16/32 backbone on an h x w input: each level ceil(previous / 2)
    sizes = [(math.ceil(h / 8), math.ceil(w / 8))]
    for _ in range(4):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    feats = [torch.randn(2, c, *s) for c, s in zip([8, 16, 32], sizes)]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(2, 16, *s) for s in sizes]
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.square().mean() for o in outs).backward()
    weights = [p for n, p in neck.named_parameters() if n.endswith('weights')]
    assert len(weights) == 2 * (4 + 4) and all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)
    # maps that are not half the size of the finer level (another backbone) are resampled, not refused
    odd = [torch.randn(1, 8, 13, 17), torch.randn(1, 16, 6, 8), torch.randn(1, 32, 4, 3)]
    assert [tuple(o.shape[-2:]) for o in neck(odd)] == [(13, 17), (6, 8), (4, 3), (2, 2), (1, 1)]


def test_bifpn_rejects_bad_arguments() -> None:
    from mmfocal.models.necks import RPDBiFPN
    with pytest.raises(ValueError, match='num_outs=2 is fewer than the 3'):
        RPDBiFPN([8, 16, 32], 16, num_outs=2)
    with pytest.raises(ValueError, match='start_level=3'):
        RPDBiFPN([8, 16, 32], 16, start_level=3)
    with pytest.raises(ValueError, match='got 2 feature maps'):
        RPDBiFPN([8, 16, 32], 16)([torch.zeros(1, 8, 4, 4), torch.zeros(1, 16, 2, 2)])


def test_quality_focal_loss_matches_hand_computation() -> None:
    """The recipe's RPDQualityFocalLoss is mmdet's QFL with IoU targets (beta 2, mean over avg_factor)."""
    from mmdet.models.losses import QualityFocalLoss
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-0.3, 1.2]])
    labels = torch.tensor([1, 2, 0])  # 2 = background
    iou = torch.tensor([0.8, 0.0, 0.6])
    p = logits.sigmoid()

    def bce(x, t):
        return -(t * math.log(torch.sigmoid(torch.tensor(x))) + (1 - t) * math.log(1 - torch.sigmoid(torch.tensor(x))))

    expected = 0.0
    for i in range(3):
        for c in range(2):
            if labels[i] == c:  # positive: BCE against the IoU, scaled by |IoU - p|^2
                expected += bce(float(logits[i, c]), float(iou[i])) * (iou[i] - p[i, c]).abs() ** 2
            else:  # negative: BCE against 0, scaled by p^2
                expected += bce(float(logits[i, c]), 0.0) * p[i, c] ** 2
    loss = QualityFocalLoss(beta=2.0)(logits, (labels, iou), torch.ones(3), avg_factor=2.0)
    torch.testing.assert_close(loss, expected / 2.0)


def test_recipe_giou_is_the_legacy_one_with_eps_1e_6() -> None:
    pred = torch.tensor([[0., 0., 2., 2.], [0., 0., 0., 0.]])
    target = torch.tensor([[1., 1., 3., 3.], [5., 5., 5., 5.]])
    # +1 convention: first pair as in the legacy test; second pair: two 1x1 boxes 5 apart, no overlap,
    # union 2 + eps, enclosure 6x6 + eps
    eps = 1e-6
    expected = torch.tensor([1 - (4 / (14 + eps) - (16 + eps - 14 - eps) / (16 + eps)),
                             1 - (0 - (36 + eps - 2 - eps) / (36 + eps))])
    loss = LegacyGIoULoss(offset=1.0, eps=eps, reduction='none')(pred, target)
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=0)


def _random_scene(seed: int, num_gts: int, size: int = 256):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num_gts, 2, generator=g) * size * 0.7
    wh = 8 + torch.rand(num_gts, 2, generator=g) * size * 0.5
    return gt(torch.cat([xy, xy + wh], 1).tolist(), torch.randint(0, 4, (num_gts, ), generator=g).tolist())


def test_point_assigner_v2_on_two_boxes_and_equal_to_mmdet_point_assigner() -> None:
    from mmdet.models.task_modules.assigners import PointAssigner
    from mmfocal.models.task_modules import PointAssignerV2
    head = small_head()
    sizes = [f.shape[-2:] for f in feats_for(256, batch=1)]
    centers, _ = head.get_points(sizes, metas_for(256, 256, 256, batch=1), 'cpu')
    points = InstanceData(priors=torch.cat(centers[0]))
    # a 48x56 box (level int((log2 12 + log2 14) / 2) = 3, stride 8) and a 140x160 box (level 5, stride 32)
    result = PointAssignerV2(scale=4, pos_num=1).assign(points, TWO_BOXES)
    pos = (result.gt_inds > 0).nonzero().squeeze(1)
    assert len(pos) == 2 and result.labels[pos].tolist() == [1, 3]
    assert points.priors[pos, 2].tolist() == [8.0, 32.0]
    for idx, box in zip(pos, TWO_BOXES.bboxes):  # the location nearest to the centre in box units
        level = points.priors[:, 2] == points.priors[idx, 2]
        d = ((points.priors[:, :2] - (box[:2] + box[2:]) / 2) / (box[2:] - box[:2])).norm(dim=1)
        assert int(idx) == int(torch.where(level, d, torch.tensor(float('inf'))).argmin())
    for seed in range(20):
        scene = _random_scene(seed, num_gts=1 + seed % 6)
        for pos_num in (1, 3):
            ours = PointAssignerV2(scale=4, pos_num=pos_num).assign(points, scene)
            theirs = PointAssigner(scale=4, pos_num=pos_num).assign(points, scene)
            assert torch.equal(ours.gt_inds, theirs.gt_inds) and torch.equal(ours.labels, theirs.labels)
    # a level with fewer points than pos_num: mmdet's raises, the recipe's assigns what there is
    two_points = InstanceData(priors=torch.tensor([[4., 4., 8.], [12., 4., 8.]]))
    few = PointAssignerV2(scale=4, pos_num=3).assign(two_points, gt([[0., 0., 16., 16.]], [2]))
    assert few.gt_inds.tolist() == [1, 1]
    empty = PointAssignerV2().assign(points, gt([], []))
    assert (empty.gt_inds == 0).all() and (empty.labels == -1).all()


def _boxes_around(centers: list, half: float) -> list:
    return [torch.cat([c[:, :2] - half * c[:, 2:], c[:, :2] + half * c[:, 2:]], 1) for c in centers]


def test_atss_assigner_v2_equals_mmdet_atss_when_levels_are_large_enough() -> None:
    from mmdet.models.task_modules.assigners import ATSSAssigner
    from mmfocal.models.task_modules import ATSSAssignerV2
    head = small_head()
    sizes = [f.shape[-2:] for f in feats_for(512, batch=1)]  # the coarsest level has 4 x 4 = 16 >= 9 locations
    centers, _ = head.get_points(sizes, metas_for(512, 512, 512, batch=1), 'cpu')
    boxes = torch.cat(_boxes_around(centers[0], 2.0))
    counts = [len(c) for c in centers[0]]
    for seed in range(10):
        scene = _random_scene(seed, num_gts=1 + seed % 5, size=512)
        ours = ATSSAssignerV2(topk=9).assign(InstanceData(priors=boxes), counts, scene)
        theirs = ATSSAssigner(topk=9).assign(InstanceData(priors=boxes), counts, scene)
        assert torch.equal(ours.gt_inds, theirs.gt_inds) and torch.equal(ours.labels, theirs.labels)
        torch.testing.assert_close(ours.max_overlaps, theirs.max_overlaps)


def test_atss_assigner_v2_tops_up_small_levels_with_repeats() -> None:
    """On a 128 x 128 input the stride-64/128 levels have 4 and 1 locations: the recipe repeats them up to 9."""
    from mmdet.models.task_modules.assigners import ATSSAssigner
    from mmfocal.models.task_modules import ATSSAssignerV2
    head = small_head()
    sizes = [f.shape[-2:] for f in feats_for(128, batch=1)]
    centers, _ = head.get_points(sizes, metas_for(128, 128, 128, batch=1), 'cpu')
    boxes = InstanceData(priors=torch.cat(_boxes_around(centers[0], 2.0)))
    counts = [len(c) for c in centers[0]]
    assert counts == [256, 64, 16, 4, 1]
    two = gt([[10., 12., 50., 60.], [40., 30., 120., 126.]], [0, 2])
    assigner = ATSSAssignerV2(topk=9)
    torch.manual_seed(0)
    first = assigner.assign(boxes, counts, two)
    torch.manual_seed(0)
    again = assigner.assign(boxes, counts, two)
    assert torch.equal(first.gt_inds, again.gt_inds)  # seeded: the same repeats
    # reference: the candidates written out, with the same repeats drawn in the same order
    torch.manual_seed(0)  # 4 locations need 5 repeats (drawn with replacement), 1 location needs 8
    lvl3 = 336 + torch.cat([torch.arange(4), torch.randint(4, (5, ))])
    lvl4 = 340 + torch.cat([torch.arange(1), torch.randint(1, (8, ))])
    overlaps = bbox_overlaps(boxes.priors, two.bboxes)
    centres = (boxes.priors[:, :2] + boxes.priors[:, 2:]) / 2
    gt_centres = (two.bboxes[:, :2] + two.bboxes[:, 2:]) / 2
    expected = torch.zeros(len(boxes.priors), dtype=torch.long)
    best = torch.full((len(boxes.priors), ), -1.0)
    for j in range(2):
        dist = (centres - gt_centres[j]).norm(dim=1)
        cand = torch.cat([dist[s:s + n].topk(9, largest=False).indices + s
                          for s, n in ((0, 256), (256, 64), (320, 16))] + [lvl3, lvl4])
        ious = overlaps[cand, j]
        thr = ious.mean() + ious.std()
        inside = ((centres[cand] - two.bboxes[j, :2]).min(1).values > 0.01) & \
            ((two.bboxes[j, 2:] - centres[cand]).min(1).values > 0.01)
        for idx in cand[(ious >= thr) & inside]:
            if overlaps[idx, j] > best[idx]:
                best[idx], expected[idx] = overlaps[idx, j], j + 1
    assert torch.equal(first.gt_inds, expected)
    assert (first.gt_inds > 0).sum() >= 2 and set(first.labels[first.gt_inds > 0].tolist()) == {0, 2}
    # mmdet's ATSS takes only the 4 + 1 real candidates there, which moves the threshold of the large box
    plain = ATSSAssigner(topk=9).assign(boxes, counts, two)
    assert not torch.equal(plain.gt_inds, first.gt_inds)


def recipe_head(**kwargs) -> RepPointsV2Head:
    """A narrow head with the Swin/Focal recipe's losses and assigners."""
    return small_head(
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox_init=dict(type='LegacyGIoULoss', offset=1.0, eps=1e-6, loss_weight=1.0),
        loss_bbox_refine=dict(type='LegacyGIoULoss', offset=1.0, eps=1e-6, loss_weight=2.0),
        train_cfg=dict(
            init=dict(assigner=dict(type='PointAssignerV2', scale=4, pos_num=1), allowed_border=-1, pos_weight=-1),
            heatmap=dict(assigner=dict(type='CornerHeatmapAssigner', gaussian_iou=0.7)),
            refine=dict(assigner=dict(type='ATSSAssignerV2', topk=9), allowed_border=-1, pos_weight=-1)),
        **kwargs)


def test_recipe_head_quality_targets_are_the_iou_of_the_refined_box() -> None:
    from mmdet.models.losses import QualityFocalLoss

    class RecordingQFL(QualityFocalLoss):
        def forward(self, pred, target, *args, **kwargs):
            calls_cls.append(target)
            return super().forward(pred, target, *args, **kwargs)

    class Recorder(torch.nn.Module):
        def __init__(self, loss):
            super().__init__()
            self.loss = loss

        def forward(self, *args, **kwargs):
            calls_refine.append(args)
            return self.loss(*args, **kwargs)

    calls_cls, calls_refine = [], []
    head = recipe_head()
    head.loss_cls = RecordingQFL(beta=2.0)
    head.loss_bbox_refine = Recorder(head.loss_bbox_refine)
    losses = head.loss_by_feat(*head(feats_for(256)), [TWO_BOXES, TWO_BOXES[:1]], metas_for(256, 256, 256))
    assert torch.isfinite(total(losses)) and len(calls_cls) == len(calls_refine) == len(STRIDES)
    num_pos = 0
    for (labels, quality), (pred, target, weight) in zip(calls_cls, calls_refine):
        assert not quality.requires_grad  # detached, as in the recipe
        pos = labels < head.num_classes
        assert (quality[~pos] == 0).all() and (weight[pos] > 0).all()
        # boxes reach the GIoU loss in units of 4 * stride; IoU does not depend on the unit
        torch.testing.assert_close(quality[pos], bbox_overlaps(pred[pos], target[pos], is_aligned=True).detach())
        num_pos += int(pos.sum())
    assert num_pos >= 3


def test_recipe_losses_finite_with_gradients_everywhere_and_without_boxes() -> None:
    head = recipe_head()
    outs = head(feats_for(256))
    losses = head.loss_by_feat(*outs, [TWO_BOXES, TWO_BOXES[:1]], metas_for(250, 256, 256))
    for name, value in losses.items():
        value = sum(value) if isinstance(value, (list, tuple)) else value
        assert torch.isfinite(value) and value > 0, name
    total(losses).backward()
    assert not [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    head.zero_grad()
    outs = head(feats_for(128))
    losses = head.loss_by_feat(*outs, [gt([], []), gt([], [])], metas_for(128, 128, 128))
    assert all(torch.isfinite(sum(v) if isinstance(v, list) else v) for v in losses.values())
    total(losses).backward()
