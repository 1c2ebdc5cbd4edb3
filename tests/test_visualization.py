"""The demo's pictures and curves (tools/visualize.py)."""

import json
import os.path as osp
import sys

import numpy as np
import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools'))
from visualize import (_place_label, draw_detections, draw_segmentation, match_detections,  # noqa: E402
                       plot_training_curves, read_scalars, side_by_side)

CLASSES = ('square', 'disc', 'cross')
PALETTE = [(220, 60, 60), (60, 200, 80), (60, 90, 230)]


def test_labels_never_overlap_even_for_stacked_boxes() -> None:
    taken = []
    box = (40, 40, 80, 80)
    for _ in range(6):  # six identical boxes: each label must find its own place
        rect = _place_label(box, (60, 12), (512, 512), taken)
        assert all(not (rect[0] < t[2] and t[0] < rect[2] and rect[1] < t[3] and t[1] < rect[3]) for t in taken)
        assert rect[1] >= 0 and rect[3] <= 512
        taken.append(rect)


def test_detection_picture_is_upscaled_and_draws_every_object() -> None:
    image = np.full((128, 96, 3), 128, np.uint8)
    mask = np.zeros((128, 96), bool)
    mask[10:30, 10:30] = True
    dets = [dict(box=(10, 10, 30, 30), label=0, score=0.9, mask=mask), dict(box=(50, 60, 90, 120), label=2)]
    picture = draw_detections(image, dets, CLASSES, PALETTE, size=512, title='prediction')
    assert picture.shape == (512, 384, 3)
    assert (picture[100, 100] != 128).any()  # the mask is painted (10..30 px -> 40..120 px)
    assert tuple(picture[60 * 4 + 40, 50 * 4]) == PALETTE[2]  # the box edge in its class colour
    assert (draw_detections(image, [], CLASSES, PALETTE, size=512) == 128).all()


def test_segmentation_picture_and_side_by_side() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    seg = np.full((64, 64), 255, np.uint8)
    seg[:32] = 1
    picture = draw_segmentation(image, seg, CLASSES, PALETTE, size=256)
    assert picture.shape == (256, 256, 3)
    assert tuple(picture[200, 200]) == (0, 0, 0)  # ignored pixels stay as they are
    assert tuple(picture[100, 200]) == tuple(int(0.6 * c) for c in PALETTE[1])
    both = side_by_side(picture, picture[:128], gap=8)
    assert both.shape == (256, 2 * 256 + 8, 3) and (both[200, 256:264] == 255).all()


def test_match_detections_finds_duplicates_misses_and_wrong_classes() -> None:
    gt = [dict(box=(0, 0, 10, 10), label=0), dict(box=(20, 20, 40, 40), label=1), dict(box=(60, 60, 70, 70), label=2)]
    pred = [dict(box=(0, 0, 10, 11), label=0, score=0.9), dict(box=(1, 0, 10, 10), label=0, score=0.8),
            dict(box=(21, 20, 40, 40), label=2, score=0.7)]
    found = match_detections(gt, pred)
    assert found['matches'] == [(0, 0, True), (1, 2, False)]
    assert found['missed'] == [2] and found['extra'] == [1]


def test_training_curves_png(tmp_path) -> None:
    log = tmp_path / 'scalars.json'
    lines = [dict(iter=i, lr=1e-3, loss=4.0 / i, loss_cls=1.0 / i) for i in range(1, 11)]
    lines.append({'coco/bbox_mAP': 0.5, 'coco/segm_mAP': 0.6, 'step': 10})
    log.write_text('\n'.join(json.dumps(line) for line in lines))
    out = tmp_path / 'curves.png'
    assert plot_training_curves(read_scalars(str(log)), str(out), title='t') == ['loss', 'loss_cls']
    import cv2
    assert cv2.imread(str(out)).shape == (600, 800, 3)
    with pytest.raises(ValueError, match='no training losses'):
        plot_training_curves([{'mIoU': 80.0}], str(out))
