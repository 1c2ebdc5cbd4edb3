"""Focal-fast (v2): same weights + same input -> the official v2 stage features; official state dicts load strictly.

The fixture was made by ``tools/dev/make_parity_fixture_v2.py`` from the official
``classification/focal_transformer_v2.py`` with the released Focal-fast-T (224×224, 224×448) and -S (224×224)
shapes. Weights are not stored: the script's :func:`deterministic_weights` makes them from the parameter names
(integer arithmetic), and so does this test.
"""

import importlib.util
import os.path as osp
from typing import Dict, List

import pytest
import torch

from mmfocal.models import FocalTransformer, FocalTransformerV2
from mmfocal.models.layers import focal_v2_geometry
from mmfocal.models.utils.focal_checkpoint import CheckpointMismatchError, official_to_mmfocal

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURE = osp.join(REPO, 'tests', 'fixtures', 'focal_v2_official_parity.pth')
CASES = ['tiny/224x224', 'tiny/224x448', 'small/224x224']
INDEX_BUFFER = ('window_coords', 'topk_cloest_indice_', 'topk_cloest_coords_')


def _fixture_script():
    spec = importlib.util.spec_from_file_location('make_parity_fixture_v2',
                                                  osp.join(REPO, 'tools', 'dev', 'make_parity_fixture_v2.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def fixture() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def official_state_dict(entry: dict) -> Dict[str, torch.Tensor]:
    """The official model's state dict for the case: its layout, the generated weights, a classifier head, and
    index buffers filled with garbage (they must be dropped and recomputed, never read)."""
    layout = entry['layout']
    params = _fixture_script().deterministic_weights(
        (name, shape) for name, shape, _ in layout if not any(b in name for b in INDEX_BUFFER))
    state = {}
    for name, shape, dtype in layout:
        if name in params:
            state[name] = params[name]
        else:
            state[name] = torch.full(shape, 3, dtype=getattr(torch, dtype.split('.')[-1]))
    return state


def stage_outputs(model: torch.nn.Module, x: torch.Tensor) -> List[torch.Tensor]:
    feats = []
    hooks = [layer.blocks[-1].register_forward_hook(lambda m, i, o: feats.append((o, i[1]))) for layer in model.layers]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return [o.view(o.shape[0], hw[0], hw[1], -1).permute(0, 3, 1, 2) for o, hw in feats]


@pytest.mark.parametrize('case', CASES)
def test_stage_features_match_official_v2(fixture: dict, case: str) -> None:
    entry = fixture[case]
    model = FocalTransformerV2(arch=entry['arch'], drop_path_rate=0.).eval()
    official = official_state_dict(entry)
    state, _ = official_to_mmfocal({'model': official}, model.state_dict())
    # dropped: the classifier head and the index buffers only; the final norm became norm3
    dropped = set(official) - set(state) - {'norm.weight', 'norm.bias'}
    assert dropped and all(k.startswith('head.') or any(b in k for b in INDEX_BUFFER) for k in dropped)
    result = model.load_state_dict(state, strict=False)
    # every official tensor is used; only our new output norms of stages 1-3 are not in it
    assert sorted(result.missing_keys) == sorted(f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias'))
    assert result.unexpected_keys == []
    ours = stage_outputs(model, entry['input'])
    for i, (got, want) in enumerate(zip(ours, entry['features'])):
        assert got.shape == want.shape, f'stage {i}'
        diff = (got - want).abs().max().item()
        assert diff <= 1e-4, f'stage {i}: max |diff| {diff:.3g}'


@pytest.mark.parametrize('case', ['tiny/224x224', 'tiny/224x448'])
def test_recomputed_nearest_keys_are_the_official_buffers(fixture: dict, case: str) -> None:
    h, w = (int(v) // 4 for v in case.split('/')[1].split('x'))
    for i in range(4):
        geo = focal_v2_geometry((h, w), 7, 128, torch.device('cpu'))
        n0, n1 = geo.n_keys
        index = geo.index.view(-1, n0 + n1)
        assert torch.equal(index[:, :n0], fixture[case]['nearest'][f'layers.{i}.0'].long()), f'stage {i} tokens'
        windows = fixture[case]['nearest'][f'layers.{i}.1'].long()
        assert torch.equal(index[:, n0:] - h * w, windows), f'stage {i} windows'
        h, w = (h + 1) // 2, (w + 1) // 2  # the conv downsampling rounds up


def test_official_and_converted_files_load_through_init_cfg(fixture: dict, tmp_path) -> None:
    entry = fixture['tiny/224x224']
    official = official_state_dict(entry)
    torch.save({'model': official}, tmp_path / 'focalv2-tiny-useconv-is224-ws7.pth')
    converted, _ = official_to_mmfocal({'model': official})
    torch.save({'state_dict': converted, 'meta': {}}, tmp_path / 'converted.pth')
    outs = []
    for name in ('focalv2-tiny-useconv-is224-ws7.pth', 'converted.pth'):
        model = FocalTransformerV2(arch='tiny', drop_path_rate=0., out_indices=(3, ),
                                   init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / name)))
        model.init_weights()
        outs.append(stage_outputs(model.eval(), entry['input'])[3])
    for got in outs:
        assert (got - entry['features'][3]).abs().max().item() <= 1e-4


def test_v1_and_v2_weights_are_not_mixed_up(fixture: dict, tmp_path) -> None:
    torch.save({'model': official_state_dict(fixture['tiny/224x224'])}, tmp_path / 'v2.pth')
    v1 = FocalTransformer(arch='tiny', use_conv_embed=True, init_cfg=dict(type='Pretrained',
                                                                          checkpoint=str(tmp_path / 'v2.pth')))
    with pytest.raises(CheckpointMismatchError, match="Focal-fast .v2. weights.*type='FocalTransformerV2'"):
        v1.init_weights()
    torch.save({'model': FocalTransformer(arch='tiny', use_conv_embed=True).state_dict()}, tmp_path / 'v1.pth')
    v2 = FocalTransformerV2(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'v1.pth')))
    with pytest.raises(CheckpointMismatchError, match="v1 weights.*type='FocalTransformer'"):
        v2.init_weights()
