"""The main job end to end on the embedded demo data (``make demo``).

1. generates the demo datasets (``tools/misc/make_demo_data.py``: 160 train / 16 val images of 128x128 with one to
   three squares, discs and crosses) unless they are there already;
2. trains **Focal-T Mask R-CNN** (``configs/demo/mask_rcnn_focal_tiny_demo.py``, the flagship config with demo
   data, image size, RoI budgets and schedule) from scratch on the CPU, evaluates it with the real COCO metric
   (pycocotools through mmdet's CocoMetric) via ``tools/test.py`` and draws ground truth | prediction for the
   first validation image (``tools/infer.py``);
3. does the same for **Focal-T UPerNet** (mIoU);
4. plots each run's training curves.

Everything runs through the commands a user runs; each is printed first. Seeded: a rerun on the same machine
and stack prints the same numbers. About 7-10 minutes on 2 cores. Outputs under ``work_dirs/demo/{mask_rcnn,upernet}/``.
"""

import argparse
import glob
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools'))  # visualize
DATA = 'data/demo'
JOBS = {
    'mask_rcnn': dict(config='configs/demo/mask_rcnn_focal_tiny_demo.py',
                      image=f'{DATA}/coco/val/demo_val_0000.jpg',
                      gt=f'{DATA}/coco/annotations/instances_val.json',
                      metrics=(('coco/bbox_mAP', 'box AP'), ('coco/segm_mAP', 'mask AP'))),
    'upernet': dict(config='configs/demo/upernet_focal_tiny_demo.py',
                    image=f'{DATA}/ade/images/validation/demo_val_0000.jpg',
                    gt=f'{DATA}/ade/annotations/validation/demo_val_0000.png',
                    metrics=(('mIoU', 'mIoU'), ('aAcc', 'pixel accuracy'))),
}
# drawn detections: a score a trained demo model gives what it found and not its duplicates
SCORE_THR = 0.5


def run(cmd: List[str]) -> None:
    """Run a command in the repository, echoing it; stop the demo if it fails."""
    print('\n$ ' + ' '.join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f'demo stopped: the command above failed with exit code {result.returncode}')


def newest_log(work_dir: str) -> Optional[str]:
    """The json scalar log of the newest run in ``work_dir`` (train: <ts>/vis_data/<ts>.json, test: <ts>/<ts>.json)."""
    logs = sorted(p for p in glob.glob(osp.join(work_dir, '*', '*.json')) + glob.glob(
        osp.join(work_dir, '*', 'vis_data', '*.json')) if osp.basename(p)[:-5] in p.split(os.sep)[-3:-1])
    return logs[-1] if logs else None


def last_metrics(work_dir: str) -> Dict[str, float]:
    """The last metrics record of the newest run's json log (empty if none)."""
    from visualize import read_scalars
    log = newest_log(work_dir)
    records = [r for r in read_scalars(log) if any(k.startswith(('coco/', 'mIoU')) for k in r)] if log else []
    return records[-1] if records else {}


def shown(path: str) -> str:
    """``path`` relative to the repository when it is inside it (as the commands above name files)."""
    rel = osp.relpath(path, REPO)
    return path if rel.startswith('..') else rel


def three_digits(value: float) -> str:
    """A metric with 3 significant digits (COCO AP as a fraction, mIoU in percent)."""
    return f'{value:#.3g}' if value is not None else 'missing'  # '#' keeps trailing zeros: 98.0, 0.500


def data_is_current() -> bool:
    """Whether ``data/demo`` was generated with the current generator defaults."""
    sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
    from make_demo_data import is_current
    return is_current(osp.join(REPO, DATA))


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', choices=list(JOBS), help='run one of the two jobs')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    py = sys.executable
    start = time.time()
    if not data_is_current():
        run([py, 'tools/misc/make_demo_data.py', '--out', DATA])
    summary, outputs = [], []
    for name, job in JOBS.items():
        if args.only and args.only != name:
            continue
        job_start = time.time()
        work = osp.join(args.work_dir, name)
        run([py, 'tools/train.py', job['config'], '--work-dir', work])
        train_log = newest_log(osp.join(REPO, work))
        ckpts = sorted(glob.glob(osp.join(REPO, work, '*.pth')), key=osp.getmtime)
        checkpoint = shown(ckpts[-1])
        run([py, 'tools/test.py', job['config'], checkpoint, '--work-dir', osp.join(work, 'test')])
        picture = osp.join(work, f'{name}_prediction.png')
        run([py, 'tools/infer.py', job['image'], job['config'], checkpoint, '--out', picture, '--gt', job['gt'],
             '--score-thr', str(SCORE_THR), '--dump', osp.join(work, f'{name}_prediction.json')])
        curves = osp.join(work, f'{name}_training_curves.png')
        from visualize import plot_training_curves, read_scalars
        plot_training_curves(read_scalars(train_log), osp.join(REPO, curves), title=f'{name} demo (Focal-T)')
        metrics = last_metrics(osp.join(REPO, work, 'test'))
        summary.append(f'{name}: ' + ', '.join(f'{label} {three_digits(metrics.get(key))}'
                                               for key, label in job['metrics']) +
                       f'  ({time.time() - job_start:.0f} s)')
        outputs += [(f'{name} ground truth | prediction', picture), (f'{name} training curves', curves),
                    (f'{name} checkpoint', checkpoint), (f'{name} training log', shown(train_log))]
    print('\n== demo summary ==')
    for line in summary:
        print('  ' + line)
    print('  These numbers say that the pipeline works: Focal-T trained from scratch for minutes on synthetic shapes.'
          '\n  They are not what Focal-T reaches on COCO or ADE20K (README, "Model zoo").')
    print(f'  total {time.time() - start:.0f} s on {os.cpu_count()} CPU cores')
    print('\n== files ==')
    for label, path in outputs:
        print(f'  {label:34s} {path}')


if __name__ == '__main__':
    main()
