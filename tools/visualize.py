"""Pictures for people: ground truth beside prediction at a readable size, one label per object, and the
training curves of a run (used by ``tools/infer.py`` and ``tools/demo.py``).

Drawing is done with OpenCV on an upscaled copy of the image (nearest-neighbour, so pixels stay honest);
labels are placed above their box, else below it, else inside it, at the first place that overlaps no label
already drawn, so that no two labels cover each other.
"""

import json
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ['Detection', 'draw_detections', 'draw_segmentation', 'side_by_side', 'match_detections',
           'read_scalars', 'plot_training_curves']

Color = Tuple[int, int, int]
Box = Tuple[int, int, int, int]


class Detection(dict):
    """One object to draw: ``box`` (x1, y1, x2, y2 in image pixels), ``label`` (int), optional ``score`` and
    ``mask`` (bool array of the image's size)."""


def _upscale(image: np.ndarray, size: int) -> Tuple[np.ndarray, float]:
    """``image`` with its longer side scaled to ``size`` (nearest neighbour), and the factor used."""
    factor = size / max(image.shape[:2])
    h, w = (round(image.shape[0] * factor), round(image.shape[1] * factor))
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST), factor


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_label(box: Box, text_size: Tuple[int, int], canvas: Tuple[int, int], taken: List[Box]) -> Box:
    """Where a label of ``text_size`` goes for ``box``: above, below, then inside, clear of ``taken`` labels."""
    tw, th = text_size[0] + 6, text_size[1] + 8
    h, w = canvas
    x = int(min(max(box[0], 0), max(w - tw, 0)))
    tries = [box[1] - th, box[3], box[1], box[3] - th]
    shifted = [y + k * th for y in tries for k in range(0, 4)]  # then step down past other labels
    for y in tries + shifted:
        rect = (x, int(y), x + tw, int(y) + th)
        if rect[1] >= 0 and rect[3] <= h and not any(_overlaps(rect, t) for t in taken):
            return rect
    return (x, max(0, min(int(box[1]), h - th)), x + tw, max(0, min(int(box[1]), h - th)) + th)


def _draw_title(canvas: np.ndarray, title: str) -> Box:
    """Black text on white in the top-left corner; returns the box it covers."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(title, font, 0.6, 2)
    cv2.rectangle(canvas, (0, 0), (tw + 10, th + 12), (255, 255, 255), -1)
    cv2.putText(canvas, title, (5, th + 5), font, 0.6, (0, 0, 0), 2, cv2.LINE_AA)
    return (0, 0, tw + 10, th + 12)


def draw_detections(image: np.ndarray, detections: Sequence[Detection], classes: Sequence[str],
                    palette: Sequence[Color], size: int = 512, title: Optional[str] = None) -> np.ndarray:
    """Boxes, masks and one label per object on an upscaled copy of ``image``.

    Args:
        image: RGB image (H, W, 3) uint8.
        detections: What to draw (see :class:`Detection`).
        classes: Class names by label.
        palette: RGB colour by label.
        size: Longer side of the picture.
        title: Drawn in the top-left corner when given.

    Returns:
        The RGB picture.
    """
    canvas, factor = _upscale(image, size)
    canvas = canvas.copy()
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    taken: List[Box] = [_draw_title(canvas, title)] if title else []
    for det in detections:
        color = tuple(int(c) for c in palette[det['label']])
        if det.get('mask') is not None:
            mask = cv2.resize(det['mask'].astype(np.uint8), canvas.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            canvas[mask > 0] = (0.5 * canvas[mask > 0] + 0.5 * np.array(color)).astype(np.uint8)
    boxes = []
    for det in detections:
        color = tuple(int(c) for c in palette[det['label']])
        box = tuple(int(round(v * factor)) for v in det['box'])
        boxes.append(box)
        cv2.rectangle(canvas, box[:2], box[2:], color, 2)
    for det, box in zip(detections, boxes):
        color = tuple(int(c) for c in palette[det['label']])
        text = classes[det['label']] + (f' {det["score"]:.2f}' if det.get('score') is not None else '')
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        rect = _place_label(box, (tw, th), canvas.shape[:2], taken)
        taken.append(rect)
        cv2.rectangle(canvas, rect[:2], rect[2:], color, -1)
        cv2.putText(canvas, text, (rect[0] + 3, rect[3] - 5), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return canvas


def draw_segmentation(image: np.ndarray, seg: np.ndarray, classes: Sequence[str], palette: Sequence[Color],
                      size: int = 512, title: Optional[str] = None, ignore_index: int = 255) -> np.ndarray:
    """A class map blended over an upscaled copy of ``image``, with a legend of the classes present.

    Args:
        image: RGB image (H, W, 3) uint8.
        seg: Class map (H, W); ``ignore_index`` is left unpainted.
        classes: Class names by index.
        palette: RGB colour by index.
        size: Longer side of the picture.
        title: Drawn in the top-left corner when given.

    Returns:
        The RGB picture.
    """
    canvas, _ = _upscale(image, size)
    seg = cv2.resize(seg.astype(np.uint8), canvas.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    colors = np.zeros_like(canvas)
    for idx, color in enumerate(palette):
        colors[seg == idx] = color
    painted = seg != ignore_index
    canvas = canvas.copy()
    canvas[painted] = (0.4 * canvas[painted] + 0.6 * colors[painted]).astype(np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    y = _draw_title(canvas, title)[3] + 8 if title else 8
    for idx in sorted(set(np.unique(seg).tolist()) - {ignore_index}):
        (tw, th), _ = cv2.getTextSize(classes[idx], font, 0.5, 1)
        cv2.rectangle(canvas, (5, y), (5 + tw + 8, y + th + 8), tuple(int(c) for c in palette[idx]), -1)
        cv2.putText(canvas, classes[idx], (9, y + th + 3), font, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        y += th + 12
    return canvas


def side_by_side(*pictures: np.ndarray, gap: int = 8) -> np.ndarray:
    """Pictures of one height next to each other on a white background."""
    h = max(p.shape[0] for p in pictures)
    parts = []
    for i, p in enumerate(pictures):
        if p.shape[0] < h:
            p = np.concatenate([p, np.full((h - p.shape[0], p.shape[1], 3), 255, np.uint8)])
        parts.append(p)
        if i < len(pictures) - 1:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return float(inter / union) if union > 0 else 0.0


def match_detections(gt: Sequence[Detection], pred: Sequence[Detection], iou_thr: float = 0.5) -> Dict[str, list]:
    """Which predictions find which gt objects (greedy by score, one prediction per object, any class).

    Args:
        gt: Ground-truth objects.
        pred: Predictions (with ``score``).
        iou_thr: Least box IoU of a match.

    Returns:
        ``matches`` (gt index, prediction index, same class?), ``missed`` gt indices, ``extra`` prediction
        indices (duplicates and false positives).
    """
    order = sorted(range(len(pred)), key=lambda i: -pred[i].get('score', 1.0))
    free = set(range(len(gt)))
    matches, extra = [], []
    for i in order:
        box = np.asarray(pred[i]['box'], dtype=float)
        best = max(free, key=lambda g: _iou(np.asarray(gt[g]['box'], dtype=float), box), default=None)
        if best is not None and _iou(np.asarray(gt[best]['box'], dtype=float), box) >= iou_thr:
            free.discard(best)
            matches.append((best, i, gt[best]['label'] == pred[i]['label']))
        else:
            extra.append(i)
    return dict(matches=matches, missed=sorted(free), extra=extra)


def read_scalars(json_log: str) -> List[dict]:
    """Records of an mmengine ``vis_data/*.json`` scalar log (one JSON object per line)."""
    with open(json_log) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_training_curves(records: Sequence[dict], out_file: str, title: str = '') -> List[str]:
    """Training losses per iteration (and the learning rate) as a PNG; validation metrics as text.

    Args:
        records: From :func:`read_scalars`.
        out_file: PNG path.
        title: Figure title.

    Returns:
        The loss names plotted.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    train = [r for r in records if 'loss' in r and 'iter' in r]
    if not train:
        raise ValueError('plot_training_curves: the log has no training losses (is it a vis_data/*.json log?)')
    step = [r.get('iter', r.get('step')) for r in train]
    names = ['loss'] + sorted(k for k in train[0] if k.startswith(('loss_', 'decode.loss', 'aux.loss')))
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw=dict(height_ratios=[3, 1]))
    for name in names:
        ax.plot(step, [r.get(name, np.nan) for r in train], label=name, linewidth=2 if name == 'loss' else 1)
    ax.set_yscale('log')
    ax.set_ylabel('training loss (log scale)')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    metrics = [r for r in records if any(k.startswith(('coco/', 'mIoU')) for k in r)]
    if metrics:
        last = metrics[-1]
        shown = {k: v for k, v in last.items() if k in ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'mAcc', 'aAcc')}
        ax.set_title(title + ('\n' if title else '') + 'validation: ' +
                     ', '.join(f'{k.split("/")[-1]} {v:.3g}' for k, v in shown.items()), fontsize=10)
    elif title:
        ax.set_title(title, fontsize=10)
    ax_lr.plot(step, [r.get('lr', np.nan) for r in train], color='gray')
    ax_lr.set_ylabel('learning rate')
    ax_lr.set_xlabel('iteration')
    ax_lr.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return names
