"""Draw a model's predictions on one image (boxes, masks and one label per object, or a segmentation
overlay), optionally beside the ground truth, at a size people can read.

Usage:
    python tools/infer.py IMAGE CONFIG CHECKPOINT --out pred.png [--score-thr 0.5] [--size 512]
        [--gt ANNOTATIONS] [--dump preds.json] [--device cpu]

``--gt``: a COCO annotation file that lists the image (detection) or the image's label PNG (segmentation, read
with the config's ``reduce_zero_label``); the picture is then ground truth | prediction. ``--dump`` writes what
was drawn (boxes, labels, scores above the threshold; or the predicted pixels per class) as JSON.
"""

import argparse
import json
import os
import os.path as osp
import sys
from typing import TYPE_CHECKING, List

if TYPE_CHECKING:
    from mmengine.config import Config

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tool_runner, visualize (also when loaded by path)


def lower_test_score_thr(cfg: 'Config', score_thr: float) -> None:
    """Let the model keep detections down to ``score_thr``: its own test threshold (often 0.05) would
    otherwise drop them before drawing, and ``--score-thr 0`` would not show everything."""
    test_cfg = cfg.model.get('test_cfg') or {}
    for stage in (test_cfg.get('rcnn'), test_cfg):
        if isinstance(stage, dict) and stage.get('score_thr', 0) > score_thr:
            stage['score_thr'] = score_thr


def coco_ground_truth(ann_file: str, image: str, classes: List[str]) -> list:
    """The gt objects of ``image`` (matched by file name) in a COCO annotation file, as drawing dicts."""
    from pycocotools import mask as mask_utils
    with open(ann_file) as f:
        coco = json.load(f)
    name = osp.basename(image)
    img = next((i for i in coco['images'] if osp.basename(i['file_name']) == name), None)
    if img is None:
        sys.exit(f'error: {name} is not listed in {ann_file}')
    cat_names = {c['id']: c['name'] for c in coco['categories']}
    objects = []
    for ann in coco['annotations']:
        if ann['image_id'] != img['id'] or cat_names[ann['category_id']] not in classes:
            continue
        x, y, w, h = ann['bbox']
        mask = None
        if ann.get('segmentation'):
            rles = mask_utils.frPyObjects(ann['segmentation'], img['height'], img['width'])
            mask = mask_utils.decode(mask_utils.merge(rles) if isinstance(rles, list) else rles).astype(bool)
        objects.append(dict(box=(x, y, x + w, y + h), label=classes.index(cat_names[ann['category_id']]),
                            mask=mask))
    return objects


def seg_ground_truth(path: str, cfg: 'Config'):
    """The label map of a segmentation annotation PNG, as the config's dataset reads it."""
    import mmcv
    import numpy as np
    seg = mmcv.imread(path, flag='unchanged')
    if seg is None:
        sys.exit(f'error: cannot decode annotation {path}')
    if cfg.test_dataloader.dataset.get('reduce_zero_label', False):
        seg = seg.astype(np.int32) - 1
        seg[seg < 0] = 255
    return seg.astype(np.uint8)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--score-thr', type=float, default=0.5, help='detection score threshold for drawing')
    parser.add_argument('--size', type=int, default=512, help='longer side of each panel in pixels')
    parser.add_argument('--gt', help='COCO annotation file (detection) or label PNG (segmentation) to draw beside')
    parser.add_argument('--dump', help='write what was drawn as JSON')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()

    import mmcv
    from mmengine.config import Config

    import mmfocal  # noqa: F401
    from mmfocal.utils.config import syncbn_to_bn, task_of
    for path, what in ((args.image, 'image'), (args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            sys.exit(f'error: {what} not found: {path}')
    image = mmcv.imread(args.image, channel_order='rgb')
    if image is None:
        sys.exit(f'error: cannot decode image {args.image} (corrupt or not an image)')
    try:
        cfg = Config.fromfile(args.config)
        scope = task_of(cfg)
    except (ValueError, ImportError) as exc:
        sys.exit(f'error: {exc}')
    syncbn_to_bn(cfg, distributed=False)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    from visualize import draw_detections, draw_segmentation, side_by_side
    if args.gt and not osp.isfile(args.gt):
        sys.exit(f'error: ground truth not found: {args.gt}')
    if scope == 'mmdet':
        lower_test_score_thr(cfg, args.score_thr)
        from mmdet.apis import inference_detector, init_detector
        model = init_detector(cfg, args.checkpoint, device=args.device)
        classes, palette = _names_and_palette(model.dataset_meta)
        inst = inference_detector(model, args.image).pred_instances
        keep = inst.scores >= args.score_thr
        pred = [dict(box=tuple(b.tolist()), label=int(lab), score=float(sc),
                     mask=m.cpu().numpy() if 'masks' in inst else None)
                for b, lab, sc, m in zip(inst.bboxes[keep], inst.labels[keep], inst.scores[keep],
                                         inst.masks[keep] if 'masks' in inst else [None] * int(keep.sum()))]
        picture = draw_detections(image, pred, classes, palette, args.size,
                                  title=f'prediction (score >= {args.score_thr:g})')
        if args.gt:
            truth = coco_ground_truth(args.gt, args.image, list(classes))
            picture = side_by_side(draw_detections(image, truth, classes, palette, args.size, 'ground truth'),
                                   picture)
        dump = dict(image=args.image, score_thr=args.score_thr, classes=list(classes),
                    detections=[dict(box=d['box'], label=d['label'], score=d['score']) for d in pred])
        message = f'{len(pred)} detections with score >= {args.score_thr:g}'
    else:
        import numpy as np
        from mmseg.apis import inference_model, init_model
        model = init_model(cfg, args.checkpoint, device=args.device)
        classes, palette = _names_and_palette(model.dataset_meta)
        seg = inference_model(model, args.image).pred_sem_seg.data[0].cpu().numpy()
        picture = draw_segmentation(image, seg, classes, palette, args.size, title='prediction')
        if args.gt:
            truth = seg_ground_truth(args.gt, cfg)
            picture = side_by_side(draw_segmentation(image, truth, classes, palette, args.size, 'ground truth'),
                                   picture)
        dump = dict(image=args.image, classes=list(classes),
                    pixels={classes[i]: int((seg == i).sum()) for i in np.unique(seg).tolist()})
        message = 'segmentation overlay'
    mmcv.imwrite(picture[:, :, ::-1], args.out)
    if args.dump:
        with open(args.dump, 'w') as f:
            json.dump(dump, f, indent=1)
    print(f'{message} drawn to {args.out}' + (' (ground truth | prediction)' if args.gt else ''))


def _names_and_palette(meta: dict) -> tuple:
    """Class names and RGB colours of a model's dataset meta (a fixed palette where it has none)."""
    import numpy as np
    classes = tuple(meta['classes'])
    palette = meta.get('palette')
    if not palette or len(palette) < len(classes):
        palette = [tuple(int(c) for c in np.random.RandomState(i).randint(40, 220, 3)) for i in range(len(classes))]
    return classes, [tuple(int(c) for c in p) for p in palette]


if __name__ == '__main__':
    main()
