"""Draw a model's predictions on one image: boxes and masks (detection) or a segmentation overlay.

Usage:
    python tools/infer.py IMAGE CONFIG CHECKPOINT --out pred.png [--score-thr 0.3] [--device cpu]
"""

import argparse
import os
import os.path as osp
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmengine.config import Config

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


def lower_test_score_thr(cfg: 'Config', score_thr: float) -> None:
    """Let the model keep detections down to ``score_thr``: its own test threshold (often 0.05) would
    otherwise drop them before drawing, and ``--score-thr 0`` would not show everything."""
    test_cfg = cfg.model.get('test_cfg') or {}
    for stage in (test_cfg.get('rcnn'), test_cfg):
        if isinstance(stage, dict) and stage.get('score_thr', 0) > score_thr:
            stage['score_thr'] = score_thr


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection score threshold for drawing')
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
    if scope == 'mmdet':
        lower_test_score_thr(cfg, args.score_thr)
        from mmdet.apis import inference_detector, init_detector
        from mmdet.visualization import DetLocalVisualizer
        model = init_detector(cfg, args.checkpoint, device=args.device)
        result = inference_detector(model, args.image)
        visualizer = DetLocalVisualizer()
        visualizer.dataset_meta = model.dataset_meta
        visualizer.add_datasample('prediction', image, data_sample=result, draw_gt=False,
                                  pred_score_thr=args.score_thr, out_file=args.out)
        n = int((result.pred_instances.scores >= args.score_thr).sum())
        print(f'{n} detections with score >= {args.score_thr} drawn to {args.out}')
    else:
        from mmseg.apis import inference_model, init_model
        from mmseg.visualization import SegLocalVisualizer
        model = init_model(cfg, args.checkpoint, device=args.device)
        result = inference_model(model, args.image)
        visualizer = SegLocalVisualizer(alpha=0.5)
        visualizer.dataset_meta = model.dataset_meta
        visualizer.add_datasample('prediction', image, data_sample=result, draw_gt=False, out_file=args.out)
        print(f'segmentation overlay drawn to {args.out}')


if __name__ == '__main__':
    main()
