"""``torch.compile`` against eager PyTorch for Focal-T, Focal-fast-T and mmdet's Swin-T, in one run.

Usage:
    python tools/analysis/compile_benchmark.py [--backend inductor] [--threads N] [--repeat 3]
        [--models focal_fast,focal_v2_fast,swin_t] [--out work_dirs/compile_benchmark.json]

Per model and case (forward at 224x224 batch 8 and at 800x1333 batch 1, no grad; a training step, forward +
backward, at 800x1333): the first compiled call (compilation included), then eager and compiled calls
alternated ``--repeat`` times and the median of the per-pair ratios compiled / eager (a shared machine's slow
spells hit both members of a pair). Compiled and eager outputs are compared. Each case compiles afresh
(``torch._dynamo.reset()``) in the same process.
"""

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

CASES = [('forward', 8, 224, 224), ('forward', 1, 800, 1333), ('train_step', 1, 800, 1333)]


def _call(model, x, train: bool):
    import torch
    if not train:
        with torch.no_grad():
            return model(x)
    out = model(x)
    sum(o.float().pow(2).mean() for o in out).backward()
    return out


def run_case(name: str, kind: str, batch: int, h: int, w: int, backend: str, repeat: int) -> dict:
    """Compile time, eager and compiled seconds, their median pair ratio and the output difference."""
    import torch
    from benchmark import build
    torch._dynamo.reset()
    model = build(name, hw=(h, w))
    train = kind == 'train_step'
    model.train(train)
    x = torch.rand(batch, 3, h, w)
    compiled = torch.compile(model, backend=backend)
    start = time.perf_counter()
    got = _call(compiled, x, train)
    first = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    ref = _call(model, x, train)
    diff = max((a.float() - b.float()).abs().max().item() for a, b in zip(ref, got))
    eager_t, compiled_t = [], []
    for _ in range(repeat):
        for fn, times in ((model, eager_t), (compiled, compiled_t)):
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            _call(fn, x, train)
            times.append(time.perf_counter() - start)
    ratios = [c / e for c, e in zip(compiled_t, eager_t)]
    return dict(model=name, case=f'{kind} {batch}x{h}x{w}', first_call_s=round(first, 1),
                compile_s=round(first - statistics.median(compiled_t), 1),
                eager_s=round(statistics.median(eager_t), 3), compiled_s=round(statistics.median(compiled_t), 3),
                ratio_median=round(statistics.median(ratios), 3), max_abs_diff=diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backend', default='inductor')
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--models', default='focal_fast,focal_v2_fast,swin_t')
    parser.add_argument('--out', default='work_dirs/compile_benchmark.json')
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    rows = []
    for kind, batch, h, w in CASES:
        for name in args.models.split(','):
            row = run_case(name, kind, batch, h, w, args.backend, args.repeat)
            rows.append(row)
            print(json.dumps(row), flush=True)
    from benchmark import write_rows
    write_rows(args.out, rows, args.threads, backend=args.backend)


if __name__ == '__main__':
    main()
