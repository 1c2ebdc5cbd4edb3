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
from export_onnx import check_dynamic, export  # noqa: E402


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


def test_fixed_size_export_is_for_one_input_size(exported) -> None:
    # Without dynamic axes the graph declares its size and onnxruntime refuses others.
    _, path = exported
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape == [1, 3, 160, 224]
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        session.run(None, {'image': np.random.rand(1, 3, 192, 224).astype(np.float32)})


@pytest.fixture(scope='module')
def exported_dynamic(tmp_path_factory):
    torch.manual_seed(1)
    # the conv stem (Focal-fast's, and use_conv_embed configs) and the patch stem are padded differently
    models = {}
    for conv in (False, True):
        model = FocalTransformer(arch='tiny', depths=(1, 1, 2, 1), focal_windows=(15, 13, 9, 7), expand_sizes=3,
                                 use_conv_embed=conv).eval()
        model.init_weights()
        path = str(tmp_path_factory.mktemp('onnx') / f'focal_tiny_dynamic_{conv}.onnx')
        # traced at a size that needs no padding anywhere: every pad must still be in the graph
        export(model, (224, 224), path, opset=17, output_names=[f'feat{i}' for i in range(4)], dynamic=True)
        models[conv] = model, path
    return models


@pytest.mark.parametrize('conv', [False, True], ids=['patch_stem', 'conv_stem'])
def test_one_dynamic_graph_equals_pytorch_at_every_size(exported_dynamic, conv) -> None:
    model, path = exported_dynamic[conv]
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape == [1, 3, 'height', 'width']
    # the traced size, a larger one, odd sizes that are multiples of neither the stride nor any window
    for shape in ((224, 224), (256, 352), (197, 263), (321, 199)):
        x = torch.rand(1, 3, *shape)
        with torch.no_grad():
            ref = model(x)
        got = session.run(None, {'image': x.numpy()})
        assert [g.shape for g in got] == [tuple(r.shape) for r in ref], shape
        for g, r in zip(got, ref):
            assert np.abs(g - r.numpy()).max() <= 1e-4, shape


def test_focal_fast_refuses_a_dynamic_export_and_says_why(tmp_path) -> None:
    model = FocalTransformerV2(arch='tiny', depths=(1, 1, 1, 1)).eval()
    with pytest.raises(ValueError, match='torch.topk.*drop --dynamic'):
        export(model, (224, 224), str(tmp_path / 'x.onnx'), opset=17, output_names=['a', 'b', 'c', 'd'],
               dynamic=True)
    assert not (tmp_path / 'x.onnx').exists()
    check_dynamic(FocalTransformer(arch='tiny', depths=(1, 1, 1, 1)))  # v1 may


def test_the_reason_focal_fast_refuses_holds() -> None:
    # ONNX TopK keeps the lowest indices among equal values; the keys torch.topk picks (official) are others for
    # some windows of a detection-sized map, so an in-graph nearest-key search would attend different tokens
    from mmfocal.models.layers.focal_geometry import nearest_keys
    h, w, s = 56, 80, 7
    keys = nearest_keys((h // s, -(-w // s)), (h, w), s, 128)
    centre = torch.stack(torch.meshgrid(torch.arange(h // s) * s + s // 2, torch.arange(-(-w // s)) * s + s // 2,
                                        indexing='ij')).flatten(1)
    token = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')).flatten(1)
    dist = (centre[:, :, None] - token[:, None, :]).float().pow(2).sum(0).sqrt()
    lowest_first = torch.sort(dist, dim=1, stable=True)[1][:, :128]
    same = (keys.sort(1)[0] == lowest_first.sort(1)[0]).all(1)
    assert not same.all()
    # the two agree on every distance (only tie choices differ)
    assert torch.equal(dist.gather(1, keys).sort(1)[0], dist.gather(1, lowest_first).sort(1)[0])


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


@pytest.mark.slow
def test_tool_exports_one_dynamic_graph_and_checks_it_at_three_sizes(tmp_path) -> None:
    cmd = [sys.executable, 'tools/deployment/export_onnx.py', '--dynamic', '--shape', '128', '160']
    out = subprocess.run(cmd + ['configs/demo/mask_rcnn_focal_tiny_demo.py', '--out', str(tmp_path / 'd.onnx')],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    checked = [line for line in out.stdout.splitlines() if 'max |diff|' in line]
    assert [line.split(' at ')[1].split(':')[0] for line in checked] == ['128x160', '192x192', '113x181']
    assert all(float(line.split('max |diff|')[1]) <= 1e-4 for line in checked)
    # Focal-fast: one clear line, no traceback, and no file
    fast = subprocess.run(cmd + ['configs/mask_rcnn/focal_fast_tiny_1x.py', '--out', str(tmp_path / 'f.onnx')],
                          cwd=REPO, capture_output=True, text=True)
    assert fast.returncode == 1 and 'Traceback' not in fast.stderr and not (tmp_path / 'f.onnx').exists()
    assert 'drop --dynamic' in fast.stderr.strip().splitlines()[-1]
