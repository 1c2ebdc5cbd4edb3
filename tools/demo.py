"""The main job end to end on the embedded demo data (``make demo``).

1. generates the demo datasets (``tools/misc/make_demo_data.py``) if they are missing;
2. trains Focal-T Mask R-CNN (``configs/demo/mask_rcnn_focal_tiny_demo.py``, the flagship config with demo data,
   image size and schedule) from scratch on the CPU, evaluates it with the real COCO metric (pycocotools through
   mmdet's CocoMetric) via ``tools/test.py`` and draws its predictions on a validation image (``tools/infer.py``);
3. does the same for Focal-T UPerNet (mIoU).

Everything runs through the same commands a user runs; each is printed first. About 8 minutes on 2 cores.
Outputs: ``work_dirs/demo/{mask_rcnn,upernet}/`` (logs, checkpoints, metrics) and ``*_prediction.png`` there.
"""

import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
JOBS = [
    ('mask_rcnn', 'configs/demo/mask_rcnn_focal_tiny_demo.py', 'data/demo/coco/val/demo_val_0000.jpg'),
    ('upernet', 'configs/demo/upernet_focal_tiny_demo.py', 'data/demo/ade/images/validation/demo_val_0000.jpg'),
]


def run(cmd: list) -> None:
    """Run a command in the repository, echoing it; stop the demo if it fails."""
    print('\n$ ' + ' '.join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f'demo stopped: the command above failed with exit code {result.returncode}')


def last_metrics(work_dir: str) -> dict:
    """The metrics line of the newest run's json log."""
    # training runs log to <timestamp>/vis_data/<timestamp>.json, test runs to <timestamp>/<timestamp>.json
    logs = sorted(p for p in glob.glob(osp.join(work_dir, '*', '*.json')) + glob.glob(
        osp.join(work_dir, '*', 'vis_data', '*.json')) if osp.basename(p)[:-5] in p.split(os.sep)[-3:-1])
    metrics = {}
    for line in open(logs[-1]) if logs else []:
        record = json.loads(line)
        if any(k.startswith(('coco/', 'mIoU', 'aAcc')) for k in record):
            metrics = record
    return metrics


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', choices=[j[0] for j in JOBS], help='run one of the two jobs')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    py = sys.executable
    start = time.time()
    if not osp.exists(osp.join(REPO, 'data/demo/coco/annotations/instances_val.json')) or \
            not osp.isdir(osp.join(REPO, 'data/demo/ade/annotations/validation')):
        run([py, 'tools/misc/make_demo_data.py', '--out', 'data/demo'])
    summary = []
    for name, config, image in JOBS:
        if args.only and args.only != name:
            continue
        job_start = time.time()
        work = osp.join(args.work_dir, name)
        run([py, 'tools/train.py', config, '--work-dir', work])
        ckpts = sorted(glob.glob(osp.join(REPO, work, '*.pth')), key=osp.getmtime)
        checkpoint = osp.relpath(ckpts[-1], REPO)
        run([py, 'tools/test.py', config, checkpoint, '--work-dir', osp.join(work, 'test')])
        picture = osp.join(work, f'{name}_prediction.png')
        run([py, 'tools/infer.py', image, config, checkpoint, '--out', picture])
        metrics = last_metrics(osp.join(REPO, work, 'test'))
        keys = ('coco/bbox_mAP', 'coco/segm_mAP') if name == 'mask_rcnn' else ('mIoU', 'aAcc')
        summary.append(f'{name}: ' + ', '.join(f'{k}={metrics.get(k)}' for k in keys) +
                       f'; picture {picture}; {time.time() - job_start:.0f} s')
    print('\n== demo summary (models trained from scratch for a few minutes on synthetic shapes; '
          'the numbers show the pipeline works, not what Focal-T reaches on COCO/ADE20K) ==')
    for line in summary:
        print('  ' + line)
    print(f'  total {time.time() - start:.0f} s on {os.cpu_count()} CPU cores')


if __name__ == '__main__':
    main()
