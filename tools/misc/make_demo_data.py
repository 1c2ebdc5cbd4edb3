"""Generate the embedded demo datasets (deterministic, a few seconds, no download).

* ``data/demo/coco``: COCO-format instance segmentation. Images with one to three squares, discs and crosses
  (one colour each, jittered) on a textured background; boxes and polygon masks;
  ``annotations/instances_{train,val}.json``.
* ``data/demo/ade``: ADE20K-format semantic segmentation of the same kind of scenes:
  ``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png`` where 0 is
  "other" (ignored by ``reduce_zero_label``), 1 the background ground, 2-4 the shapes.
* ``data/demo/cls``: ImageNet folder layout for classification (``{train,val}/{square,disc,cross}/*.jpg``):
  64x64 images with one shape each, labelled by the shape.

Usage:
    python tools/misc/make_demo_data.py [--out data/demo] [--train 160] [--val 16] [--size 128]

Many small images with few, large, clearly different objects: what a detector trained from scratch on two
CPU cores learns in minutes (docs/tools.md, "The demo").
"""

import argparse
import json
import math
import os
import shutil
from typing import Dict, List, Tuple

import cv2
import numpy as np

# A cross rather than a triangle: a triangle's box ends in thin tips, and a detector trained for minutes from
# scratch placed them badly (triangle box AP 0.24-0.28, AP75 0.05-0.14, against 0.5-0.7 for squares and discs,
# upright or rotated); the cross's arms end flat.
CLASSES = ('square', 'disc', 'cross')
SEG_CLASSES = ('ground', ) + CLASSES
COLORS = {'square': (220, 60, 60), 'disc': (60, 200, 80), 'cross': (60, 90, 230)}
CROSS_ARM = 0.35  # half-width of the cross's arms, in units of its radius


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Outline of a shape of radius ``r`` (centre to farthest point, or to a corner) as an (N, 2) polygon."""
    if kind == 'disc':
        t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
    if kind == 'square':
        t = angle + np.arange(4) * math.pi / 2
        return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
    if kind != 'cross':
        raise ValueError(f'unknown shape {kind!r}')
    w = CROSS_ARM * r
    # the +x arm's three corners, turned by 0, -90, -180 and -270 degrees: 12 corners in order, no hole
    arm = np.array([[r, w], [r, -w], [w, -w]])
    pts = np.concatenate([arm @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
                          for a in -np.arange(4) * math.pi / 2])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return pts @ rot.T + [cx, cy]


def make_scene(rng: np.random.RandomState, size: Tuple[int, int], objects: Tuple[int, int] = (1, 3),
               radius: Tuple[float, float] = (0.14, 0.28), noise_level: int = 25
               ) -> Tuple[np.ndarray, np.ndarray, List[dict]]:
    """One image, its semantic map and its instances (class name, polygon).

    Args:
        rng: Random state (the only source of randomness).
        size: (height, width).
        objects: Least and most shapes per image (fewer when a shape finds no free place in 20 tries).
        radius: Shape radius range as fractions of the shorter side.
        noise_level: Amplitude of the background texture.

    Returns:
        The RGB image, its semantic map and one dict per shape (``kind``, ``polygon``, ``mask``).
    """
    h, w = size
    base = rng.randint(90, 160, 3)
    noise = rng.randint(-noise_level, noise_level + 1, (h // 8 + 1, w // 8 + 1, 3))
    img = np.clip(base + cv2.resize(noise.astype(np.float32), (w, h)), 0, 255).astype(np.uint8)
    seg = np.ones((h, w), np.uint8)  # ground
    if rng.rand() < 0.5:  # an unlabelled strip ("other", ignored by reduce_zero_label)
        y = rng.randint(0, h - 12)
        img[y:y + 10] = rng.randint(0, 255, 3)
        seg[y:y + 10] = 0
    instances = []
    occupied = np.zeros((h, w), bool)
    for _ in range(rng.randint(objects[0], objects[1] + 1)):
        kind = CLASSES[rng.randint(len(CLASSES))]
        for _attempt in range(20):
            r = rng.uniform(*radius) * min(h, w)
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            poly = _polygon(kind, cx, cy, r, rng.uniform(0, math.pi))
            mask = np.zeros((h, w), np.uint8)
            cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
            if not (mask.astype(bool) & occupied).any():
                break
        else:
            continue
        occupied |= mask.astype(bool)
        color = np.array(COLORS[kind]) + rng.randint(-20, 20, 3)
        img[mask.astype(bool)] = np.clip(color, 0, 255)
        seg[mask.astype(bool)] = SEG_CLASSES.index(kind) + 1
        instances.append(dict(kind=kind, polygon=poly, mask=mask))
    return img, seg, instances


def write_split(out: str, split: str, n: int, seed: int, size: Tuple[int, int]) -> Dict[str, int]:
    """Write one split of both datasets; returns counts."""
    rng = np.random.RandomState(seed)
    coco_img_dir = os.path.join(out, 'coco', f'{split}')
    ade_split = 'training' if split == 'train' else 'validation'
    ade_img_dir = os.path.join(out, 'ade', 'images', ade_split)
    ade_ann_dir = os.path.join(out, 'ade', 'annotations', ade_split)
    for d in (coco_img_dir, ade_img_dir, ade_ann_dir):
        os.makedirs(d, exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        img, seg, instances = make_scene(rng, size)
        name = f'demo_{split}_{i:04d}'
        cv2.imwrite(os.path.join(coco_img_dir, name + '.jpg'), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(os.path.join(ade_img_dir, name + '.jpg'), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(os.path.join(ade_ann_dir, name + '.png'), seg)
        images.append(dict(id=i + 1, file_name=name + '.jpg', height=size[0], width=size[1]))
        for inst in instances:
            x, y, bw, bh = cv2.boundingRect(inst['mask'])
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i + 1, category_id=CLASSES.index(inst['kind']) + 1,
                bbox=[float(x), float(y), float(bw), float(bh)], area=float(inst['mask'].sum()), iscrowd=0,
                segmentation=[[round(float(v), 2) for v in inst['polygon'].flatten()]]))
    categories = [dict(id=i + 1, name=c, supercategory='shape') for i, c in enumerate(CLASSES)]
    ann_dir = os.path.join(out, 'coco', 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    with open(os.path.join(ann_dir, f'instances_{split}.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return dict(images=len(images), instances=len(annotations))


def write_classification(out: str, split: str, n: int, seed: int, size: int = 64) -> Dict[str, int]:
    """Write one split of the classification set (one shape per image, folder = class); returns counts."""
    rng = np.random.RandomState(seed)
    counts = {c: 0 for c in CLASSES}
    for c in CLASSES:
        os.makedirs(os.path.join(out, 'cls', split, c), exist_ok=True)
    for i in range(n):
        img, _, instances = make_scene(rng, (size, size), objects=(1, 1), radius=(0.25, 0.4))
        kind = instances[0]['kind']  # one shape on an empty image always finds its place
        counts[kind] += 1
        cv2.imwrite(os.path.join(out, 'cls', split, kind, f'demo_{split}_{i:04d}.jpg'), img[:, :, ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return counts


DEFAULTS = dict(n_train=160, n_val=16, size=128)
CLS_SPLITS = (('train', 96, 2), ('val', 24, 3))  # (split, images, seed) of the classification set
GENERATOR_VERSION = 4  # raise when the scenes change, so that tools/demo.py regenerates old data


def manifest(n_train: int = DEFAULTS['n_train'], n_val: int = DEFAULTS['n_val'],
             size: int = DEFAULTS['size']) -> Dict[str, int]:
    """What ``data/demo/manifest.json`` says about data generated with these arguments."""
    return dict(version=GENERATOR_VERSION, train=n_train, val=n_val, size=size)


def is_current(out: str, n_train: int = DEFAULTS['n_train'], n_val: int = DEFAULTS['n_val'],
               size: int = DEFAULTS['size']) -> bool:
    """Whether ``out`` holds complete demo data made with these arguments by this generator version."""
    path = os.path.join(out, 'manifest.json')  # written last, so present only after a complete run
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        return json.load(f) == manifest(n_train, n_val, size)


def make_demo_data(out: str = 'data/demo', n_train: int = DEFAULTS['n_train'], n_val: int = DEFAULTS['n_val'],
                   size: int = DEFAULTS['size']) -> None:
    """Create the demo datasets under ``out``, replacing earlier ones, and their ``manifest.json``."""
    manifest_path = os.path.join(out, 'manifest.json')
    if os.path.isfile(manifest_path):  # removed first: an interrupted run leaves no manifest of complete data
        os.remove(manifest_path)
    for sub in ('coco', 'ade', 'cls'):  # only the generator's own folders: no stale images of an older version
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    for split, n, seed in (('train', n_train, 0), ('val', n_val, 1)):
        counts = write_split(out, split, n, seed, (size, size))
        print(f'demo {split}: {counts["images"]} images, {counts["instances"]} instances -> {out}')
    for split, n, seed in CLS_SPLITS:
        counts = write_classification(out, split, n, seed)
        print(f'demo classification {split}: {n} images {counts} -> {out}/cls')
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(manifest(n_train, n_val, size), f)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/demo')
    parser.add_argument('--train', type=int, default=DEFAULTS['n_train'])
    parser.add_argument('--val', type=int, default=DEFAULTS['n_val'])
    parser.add_argument('--size', type=int, default=DEFAULTS['size'])
    parser.add_argument('--if-changed', action='store_true',
                        help='leave data whose manifest.json matches these arguments as it is (runs that read it '
                             'meanwhile, e.g. a second test suite, never see it half written)')
    args = parser.parse_args()
    if args.if_changed and is_current(args.out, args.train, args.val, args.size):
        print(f'demo data in {args.out} is up to date')
        return
    make_demo_data(args.out, args.train, args.val, args.size)


if __name__ == '__main__':
    main()
