"""tools/dev/cuda_check.py, the prepared GPU check, runs as a smoke test on CPU so that it cannot rot."""

import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(REPO, 'tools', 'dev', 'cuda_check.py')


# slow: 54 s on the default stack, 200 s on torch 2.1 at one thread; CI runs it once, on the default stack
@pytest.mark.slow
def test_quick_cpu_run_checks_correctness_speed_and_writes_its_report(tmp_path) -> None:
    result = subprocess.run([sys.executable, SCRIPT, '--device', 'cpu', '--quick', '--out', str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / 'cuda_check.json').read_text())
    checks = report['correctness']
    names = ' | '.join(checks)
    for family in ('Focal-T', 'Focal-fast-T'):
        for part in ('fp32 eval outputs fast vs reference', 'fp32 gradients fast vs reference', 'bf16 autocast',
                     'fp16 autocast', 'with_cp gradients', 'torch.compile (aot_eager) gradients vs eager'):
            assert f'{family} {part}' in names, (family, part)
    assert 'FocalNet-T bf16 autocast outputs vs fp32' in names
    assert all(c['ok'] for c in checks.values()) and sum(c['value'] is not None for c in checks.values()) >= 15
    assert len(report['speed_s']) == 3  # two forward sizes and a training step
    for times in report['speed_s'].values():
        assert set(times) == {'focal_fast', 'focal_reference', 'focal_v2_fast', 'focalnet_t', 'focalnet_b', 'swin_t'}
        assert all(t > 0 for t in times.values())
    assert set(report['targets']) == {'forward', 'train_step'}
    assert report['top_kernels_fast_train_step'] and report['device'] == 'CPU'
    summary = (tmp_path / 'summary.txt').read_text()
    assert 'correctness:' in summary and 'FAIL' not in summary and 'target train_step' in summary


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible: the no-GPU message cannot be shown here')
def test_asking_for_cuda_without_a_gpu_is_one_line() -> None:
    result = subprocess.run([sys.executable, SCRIPT, '--quick'], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == \
        'cuda_check: no CUDA device visible (use --device cpu --quick for the smoke test)'
    assert 'Traceback' not in result.stderr
