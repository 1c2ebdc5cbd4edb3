"""RepPoints V2 (head, targets, losses, inference) as described in the README, section "RepPointsV2"."""

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
def tiny_detector_cfg() -> Config:
    cfg = Config.fromfile(osp.join(REPO, 'configs/reppoints_v2/r50_fpn_giou_1x.py'))
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
def test_detector_overfits_a_tiny_set_and_finds_its_boxes() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_detector_cfg())
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
    for key in ('loss_cls', 'loss_pts_refine', 'loss_heatmap'):
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
