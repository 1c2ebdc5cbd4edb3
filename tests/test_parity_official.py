"""Same weights + same input -> the same stage features as the official v1 code.

The fixture was made by ``tools/dev/make_parity_fixture.py`` from the official
``classification/focal_transformer.py`` (small configurations, random weights, 224×224 and
240×352 inputs). Features are the outputs of the last block of each stage, before downsampling.
"""

import os.path as osp
from typing import List

import pytest
import torch

from mmfocal.models import FocalTransformer
from mmfocal.models.utils.focal_checkpoint import official_to_mmfocal

FIXTURE = osp.join(osp.dirname(__file__), 'fixtures', 'focal_official_parity.pth')


@pytest.fixture(scope='module')
def fixture() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def build_like_official(kwargs: dict, attn_impl: str) -> FocalTransformer:
    model = FocalTransformer(
        embed_dims=kwargs['embed_dim'], depths=kwargs['depths'], num_heads=kwargs['num_heads'],
        window_size=kwargs['window_size'], focal_windows=kwargs['focal_windows'],
        # the official 224 build disables the last stage's ring (7x7 map): same keys as the checkpoints
        expand_sizes=(3, 3, 3, 0), use_conv_embed=kwargs.get('use_conv_embed', False), drop_path_rate=0.,
        attn_impl=attn_impl)
    return model.eval()


def stage_outputs(model: FocalTransformer, x: torch.Tensor) -> List[torch.Tensor]:
    feats = []
    hooks = [layer.blocks[-1].register_forward_hook(lambda m, i, o: feats.append((o, i[1]))) for layer in model.layers]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return [o.view(o.shape[0], hw[0], hw[1], -1).permute(0, 3, 1, 2) for o, hw in feats]


@pytest.mark.parametrize('attn_impl', ['fast', 'reference'])
@pytest.mark.parametrize('case', ['plain/224x224', 'plain/240x352', 'conv_embed/224x224'])
def test_stage_features_match_official(fixture: dict, case: str, attn_impl: str) -> None:
    name, size = case.split('/')
    entry = fixture[name]
    model = build_like_official(entry['kwargs'], attn_impl)
    state, _ = official_to_mmfocal({'model': entry['state_dict']}, model.state_dict())
    result = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    # everything of the official model is used; only our new output norms are not in it
    assert sorted(result.missing_keys) == sorted(f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias'))
    assert result.unexpected_keys == []
    data = entry['cases'][size]
    ours = stage_outputs(model, data['input'].float())
    for i, (got, want) in enumerate(zip(ours, data['features'])):
        assert got.shape == want.shape, f'stage {i}'
        diff = (got - want).abs().max().item()
        assert diff <= 1e-5, f'stage {i}: max |diff| {diff:.3g}'
