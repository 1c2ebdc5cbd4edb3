"""tools/analysis/benchmark.py end to end in its quick mode (CPU, one small size)."""

import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.slow
def test_quick_benchmark_writes_consistent_json_and_plot(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, 'tools/analysis/benchmark.py', '--quick', '--repeat', '1', '--threads', '2',
         '--out', str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.load(open(tmp_path / 'benchmark.json'))
    assert data['agreement']['fast_vs_reference'] <= 1e-4
    assert data['agreement']['v2_fast_vs_reference'] <= 1e-4
    run = data['runs']['160x160 b1']
    for name in ('focal_fast', 'focal_reference', 'focal_v2_fast', 'focal_v2_reference', 'swin_t'):
        assert run[name]['forward'] > 0 and run[name]['forward_backward'] > run[name]['forward'] * 0.5
        assert run[name]['peak_mem_mb'] > 1
    ratio = run['ratios']['focal_fast/swin_t']
    assert ratio['forward'] == pytest.approx(run['focal_fast']['forward'] / run['swin_t']['forward'])
    v1_v2 = run['ratios']['focal_fast/focal_v2_fast']
    assert v1_v2['forward'] == pytest.approx(run['focal_fast']['forward'] / run['focal_v2_fast']['forward'])
    # Exact tensor accounting: the fast path keeps less for backward than the roll/unfold reference.
    assert run['focal_fast']['peak_mem_mb'] < run['focal_reference']['peak_mem_mb']
    assert (tmp_path / 'benchmark.png').stat().st_size > 10_000
