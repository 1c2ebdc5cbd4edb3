"""onnxruntime speed of a dynamic-size ONNX graph against fixed-size graphs, and against eager PyTorch, in one run.

Usage:
    python tools/analysis/onnx_benchmark.py [--threads N] [--repeat 3] [--models focal_fast,focal_v2_fast]
        [--out work_dirs/onnx_benchmark.json]

Per model (the Focal-T / Focal-fast-T backbones of ``benchmark.py``, same seeded weights) and input size (one image
at 224x224 and at 800x1333): a graph exported for that size, and (v1 only; Focal-fast refuses dynamic sizes) one
dynamic-size graph exported once at 224x224. The graphs and eager PyTorch (the fast path, no grad) run alternately
``--repeat`` times; the table gives median seconds and the median of the per-round ratios, and each graph's largest
difference to PyTorch.
"""

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', 'deployment'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

SIZES = [(224, 224), (800, 1333)]


def _session(path: str, threads: int):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def run_model(name: str, threads: int, repeat: int, folder: str) -> list:
    """One row per input size: eager, fixed-graph and (v1) dynamic-graph seconds, ratios and differences."""
    import numpy as np
    import torch
    from benchmark import build
    from export_onnx import export
    model = build(name).eval()
    names = [f'feat{i}' for i in range(4)]
    dynamic = None
    if 'v2' not in name:
        path = osp.join(folder, f'{name}_dynamic.onnx')
        start = time.perf_counter()
        export(model, (224, 224), path, 17, names, dynamic=True)
        dynamic = (_session(path, threads), time.perf_counter() - start)
    rows = []
    for h, w in SIZES:
        path = osp.join(folder, f'{name}_{h}x{w}.onnx')
        start = time.perf_counter()
        export(model, (h, w), path, 17, names)
        fixed = (_session(path, threads), time.perf_counter() - start)
        x = torch.rand(1, 3, h, w)
        runners = {'eager': lambda: model(x), 'fixed': lambda: fixed[0].run(None, {'image': x.numpy()})}
        if dynamic is not None:
            runners['dynamic'] = lambda: dynamic[0].run(None, {'image': x.numpy()})
        with torch.no_grad():
            ref = [r.numpy() for r in model(x)]
            diffs = {k: max(float(np.abs(g - r).max()) for g, r in zip(fn(), ref))
                     for k, fn in runners.items() if k != 'eager'}
            times = {k: [] for k in runners}
            for _ in range(repeat):
                for k, fn in runners.items():
                    start = time.perf_counter()
                    fn()
                    times[k].append(time.perf_counter() - start)
        row = dict(model=name, size=f'1x{h}x{w}', export_s=dict(fixed=round(fixed[1], 1)),
                   seconds={k: round(statistics.median(v), 3) for k, v in times.items()}, max_abs_diff=diffs,
                   fixed_over_eager=round(statistics.median(f / e for f, e in zip(times['fixed'], times['eager'])), 3))
        if dynamic is not None:
            row['export_s']['dynamic'] = round(dynamic[1], 1)
            row['dynamic_over_fixed'] = round(statistics.median(
                d / f for d, f in zip(times['dynamic'], times['fixed'])), 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--models', default='focal_fast,focal_v2_fast')
    parser.add_argument('--out', default='work_dirs/onnx_benchmark.json')
    args = parser.parse_args()
    import warnings

    import onnxruntime
    import torch
    warnings.filterwarnings('ignore')
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        rows = [row for name in args.models.split(',') for row in run_model(name, args.threads, args.repeat, folder)]
    from benchmark import write_rows
    write_rows(args.out, rows, args.threads, onnxruntime=onnxruntime.__version__)


if __name__ == '__main__':
    main()
