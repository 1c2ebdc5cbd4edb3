"""ONNX export of the backbone as users build it (fast attention by default), checked with onnxruntime."""

import os.path as osp
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch

from mmfocal.models import FocalTransformer, FocalTransformerV2

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
from export_onnx import export  # noqa: E402


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    torch.manual_seed(0)
    # Focal-T's widths and the detection setting with one or two blocks a stage: every op of the deep model, and the
    # export takes a third of the time (98 s for the full depth on torch 2.1's exporter)
    model = FocalTransformer(arch='tiny', depths=(1, 1, 2, 1), focal_windows=(15, 13, 9, 7),
                             expand_sizes=3).eval()  # attn_impl='fast'
    model.init_weights()
    path = str(tmp_path_factory.mktemp('onnx') / 'focal_tiny.onnx')
    export(model, (160, 224), path, opset=17, output_names=[f'feat{i}' for i in range(4)])
    return model, path


def test_onnxruntime_equals_pytorch_fast_path(exported) -> None:
    model, path = exported
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    x = torch.rand(1, 3, 160, 224)
    with torch.no_grad():
        ref = model(x)  # the fast path, as users run it
    got = session.run(None, {'image': x.numpy()})
    assert [g.shape for g in got] == [tuple(r.shape) for r in ref]
    for g, r in zip(got, ref):
        assert np.abs(g - r.numpy()).max() <= 1e-4


def test_focal_fast_onnxruntime_equals_pytorch(tmp_path) -> None:
    # Focal-fast has the conv stem and per-pair MLP biases; exported with the official formulation, it gives the
    # numbers of its fast path (at 160x224 the map heights 40, 20, 10, 5 are not multiples of the window: padded)
    torch.manual_seed(0)
    model = FocalTransformerV2(arch='tiny', depths=(1, 1, 2, 1)).eval()
    model.init_weights()
    path, shape = str(tmp_path / 'focal_fast_tiny.onnx'), (160, 224)
    export(model, shape, path, opset=17, output_names=[f'feat{i}' for i in range(4)])
    x = torch.rand(1, 3, *shape)
    with torch.no_grad():
        ref = model(x)
    got = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider']).run(None, {'image': x.numpy()})
    assert [g.shape for g in got] == [tuple(r.shape) for r in ref]
    for g, r in zip(got, ref):
        assert np.abs(g - r.numpy()).max() <= 1e-4


def test_export_is_for_one_input_size(exported) -> None:
    # Window padding and the gather pattern are fixed when traced: the graph declares its size and refuses others.
    _, path = exported
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape == [1, 3, 160, 224]
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        session.run(None, {'image': np.random.rand(1, 3, 192, 224).astype(np.float32)})


@pytest.mark.slow  # 3 minutes on torch 2.1's exporter; the default stack runs it, the fixture above covers 2.1
def test_tool_exports_a_segmentor_and_explains_the_pooling_size_limit(tmp_path) -> None:
    cmd = [sys.executable, 'tools/deployment/export_onnx.py', 'configs/demo/upernet_focal_tiny_demo.py', '--whole']
    out = subprocess.run(cmd + ['--shape', '192', '192', '--out', str(tmp_path / 'u.onnx')], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    diff = float(out.stdout.split('max |diff|')[1].split()[0])
    assert diff <= 1e-4 and osp.isfile(tmp_path / 'u.onnx')
    bad = subprocess.run(cmd + ['--shape', '160', '160', '--out', str(tmp_path / 'v.onnx')], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and 'Traceback' not in bad.stderr
    assert 'choose --shape as multiples of 192' in bad.stderr.strip().splitlines()[-1]
