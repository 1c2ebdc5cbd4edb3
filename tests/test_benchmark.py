"""tools/analysis/benchmark.py end to end in its quick mode (CPU, one small size)."""

import json
import os.path as osp
import statistics
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.slow
def test_quick_benchmark_writes_consistent_json_and_plot(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, 'tools/analysis/benchmark.py', '--quick', '--repeat', '2', '--threads', '2', '--profile',
         '--out', str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.load(open(tmp_path / 'benchmark.json'))
    assert data['agreement']['fast_vs_reference'] <= 1e-4
    assert data['agreement']['v2_fast_vs_reference'] <= 1e-4
    run = data['runs']['160x160 b1']
    for name in ('focal_fast', 'focal_reference', 'focal_v2_fast', 'focal_v2_reference', 'focalnet_t', 'focalnet_b',
                 'timm_focalnet_t', 'swin_t'):
        assert run[name]['forward'] > 0 and run[name]['forward_backward'] > run[name]['forward'] * 0.5
        assert run[name]['peak_mem_mb'] > 1
        rounds = run[name]['rounds']['forward_backward']
        assert len(rounds) == 2 and run[name]['forward_backward'] == pytest.approx(statistics.median(rounds))
        ops = run[name]['top_ops']  # --profile: the operators a forward+backward spends its time in
        assert len(ops) == 6 and all(op['ms'] > 0 and op['calls'] >= 1 for op in ops)
        assert ops == sorted(ops, key=lambda op: -op['ms']) and 0 < sum(op['share'] for op in ops) <= 1.001
    # a ratio is the median of the per-round ratios (each round times the models back to back)
    for pair, (slow, fast) in (('focal_fast/swin_t', ('focal_fast', 'swin_t')),
                               ('focalnet_t/timm_focalnet_t', ('focalnet_t', 'timm_focalnet_t')),
                               ('focal_v2_fast/focal_fast', ('focal_v2_fast', 'focal_fast'))):
        for mode in ('forward', 'forward_backward'):
            a, b = run[slow]['rounds'][mode], run[fast]['rounds'][mode]
            assert run['ratios'][pair][mode] == pytest.approx(statistics.median(x / y for x, y in zip(a, b)))
    # Multiply-adds per image: v1's fast path merges the 12 ring keys the official rolls read twice, Focal-fast's
    # evaluates the position-bias MLP once per distinct offset instead of once per pair: less work than the
    # reference formulations
    macs = {name: run[name]['gmacs'] for name in ('focal_fast', 'focal_reference', 'focal_v2_fast',
                                                   'focal_v2_reference', 'swin_t')}
    assert 0 < macs['focal_fast'] < macs['focal_reference'] and 0 < macs['focal_v2_fast'] < macs['focal_v2_reference']
    assert run['ratios']['focal_fast/swin_t']['gmacs'] == pytest.approx(macs['focal_fast'] / macs['swin_t'])
    # Exact tensor accounting: the fast path keeps less for backward than the roll/unfold reference.
    assert run['focal_fast']['peak_mem_mb'] < run['focal_reference']['peak_mem_mb']
    assert (tmp_path / 'benchmark.png').stat().st_size > 10_000
