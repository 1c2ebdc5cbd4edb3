"""FocalNet: the official code's outputs, timm's logits, every release's layout, any size, freezing, loading, errors.

The fixture was made by ``tools/dev/make_parity_fixture_focalnet.py`` from the official microsoft/FocalNet files
(the mmdet 2.x detection backbone and the classifier) on small configurations with random weights.
"""

import os.path as osp
from typing import Dict, List

import pytest
import torch
import torch.nn.functional as F

from mmfocal.models import FocalNet
from mmfocal.models.backbones import focalnet as focalnet_module
from mmfocal.models.utils import CheckpointMismatchError
from mmfocal.models.utils.focalnet_checkpoint import describe_adaptations

FIXTURE = osp.join(osp.dirname(__file__), 'fixtures', 'focalnet_official_parity.pth')


@pytest.fixture(scope='module')
def fixture() -> dict:
    return torch.load(FIXTURE, weights_only=True)


def from_official(kwargs: dict, **extra) -> FocalNet:
    """Our backbone with the official constructor's arguments."""
    args = dict(embed_dims=kwargs['embed_dim'], depths=kwargs['depths'], focal_levels=kwargs['focal_levels'],
                focal_windows=kwargs['focal_windows'], patch_size=kwargs.get('patch_size', 4),
                use_conv_embed=kwargs.get('use_conv_embed', False), use_postln=kwargs.get('use_postln', False),
                use_layerscale=kwargs.get('use_layerscale', False),
                normalize_modulator=kwargs.get('normalize_modulator', False),
                use_postln_in_modulation=kwargs.get('use_postln_in_modulation', False), drop_path_rate=0.)
    args.update(extra)
    return FocalNet(**args).eval()


def fp32(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v.float() for k, v in state.items()}


def logits_of(model: FocalNet, head: Dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The official classifier's head on our last stage: its final norm is our norm{last}, then mean and linear."""
    with torch.no_grad():
        (feat, ) = model(x)
    return F.linear(feat.mean(dim=(2, 3)), head['head.weight'].float(), head['head.bias'].float())


@pytest.mark.parametrize('case', ['det_lrf/224x224', 'det_lrf/197x263', 'det_lrf/250x330', 'det_mixed_ls/224x224',
                                  'det_mixed_ls/161x97'])
def test_every_output_equals_the_official_detection_backbone(fixture: dict, case: str) -> None:
    name, size = case.split('/')
    entry = fixture[name]
    model = from_official(entry['kwargs'], out_indices=entry['kwargs']['out_indices'])
    model.load_state_dict(fp32(entry['state_dict']), strict=True)  # the official names, nothing left over
    data = entry['cases'][size]
    with torch.no_grad():
        ours = model(data['input'].float())
    assert len(ours) == len(data['features'])
    for i, (got, want) in enumerate(zip(ours, data['features'])):
        assert got.shape == want.shape, f'output {i}'
        assert (got - want).abs().max().item() <= 1e-4, f'output {i}'


@pytest.mark.parametrize('name', ['cls_srf', 'cls_large_switches', 'cls_iso'])
def test_classification_release_gives_the_official_logits(fixture: dict, name: str, tmp_path) -> None:
    """Every switch of the large models (overlapped stem, post-norm, layer scale, normalised modulator, post-LN in
    the modulation) and the isotropic layout: an official classification file through ``init_cfg``."""
    entry = fixture[name]
    path = str(tmp_path / 'official.pth')
    torch.save({'model': fp32(entry['state_dict'])}, path)
    last = len(entry['kwargs']['depths']) - 1
    model = from_official(entry['kwargs'], out_indices=(last, ),
                          init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    model.eval()
    logits = logits_of(model, entry['state_dict'], entry['input'].float())
    assert (logits - entry['logits']).abs().max().item() <= 1e-4


def test_imagenet_kernels_zero_padded_to_the_detection_windows_compute_the_same(fixture: dict, tmp_path,
                                                                               monkeypatch) -> None:
    """The official detection loader's rule: 3×3 / 5×5 ImageNet kernels into 9×9 / 11×11 ones, reported."""
    entry = fixture['cls_srf']
    path = str(tmp_path / 'focalnet_cls.pth')
    torch.save({'model': fp32(entry['state_dict'])}, path)
    messages: List[str] = []
    monkeypatch.setattr(focalnet_module, 'log_info', messages.append)
    small = from_official(entry['kwargs'], init_cfg=dict(type='Pretrained', checkpoint=path))
    large = from_official(entry['kwargs'], focal_windows=(9, 9, 9, 9),
                          init_cfg=dict(type='Pretrained', checkpoint=path))
    small.init_weights()
    large.init_weights()
    assert large.layers[0].blocks[0].modulation.focal_layers[1][0].weight.shape[-1] == 11
    x = entry['input'].float()[:, :, :200, :232]
    with torch.no_grad():
        for a, b in zip(small.eval()(x), large.eval()(x)):
            assert (a - b).abs().max().item() <= 1e-5
    report = messages[-1]
    assert 'official layout' in report
    # srf: two levels of 3 and 5 in each of the five blocks
    assert 'focal kernels zero-padded (or centre-cropped) as the official detection loader does: 3->9 (5x), ' \
        '5->11 (5x)' in report
    assert 'classifier head dropped' in report and 'norm -> norm3' in report
    # norm0..2 are the detection outputs the classifier does not have: reported as newly initialised
    assert 'missing (newly initialised): norm0.{weight,bias}, norm1.{weight,bias}, norm2.{weight,bias}' in report


def test_more_focal_levels_than_the_checkpoint_place_the_gates_in_order(fixture: dict) -> None:
    entry = fixture['cls_srf']  # L = 2
    state = fp32(entry['state_dict'])
    model = from_official(entry['kwargs'], focal_levels=3)
    model.load_state_dict(state, strict=False)
    c = 16
    key = 'layers.0.blocks.0.modulation.f.weight'
    have, got = state[key], model.state_dict()[key]
    assert got.shape[0] == 2 * c + 4 and have.shape[0] == 2 * c + 3
    assert torch.equal(got[:2 * c + 2], have[:2 * c + 2])  # q, ctx, the two level gates
    assert torch.equal(got[-1], have[-1])  # the global gate stays last
    assert not got[2 * c + 2].any()  # the new level is gated off
    assert describe_adaptations([], ['layers.0.blocks.0.modulation.f.weight 35->36 rows'])[0].startswith(
        'gate rows of 1 modulation.f tensors')
    fewer = from_official(entry['kwargs'], focal_levels=1)
    with pytest.raises(CheckpointMismatchError, match='more focal levels than the model'):
        fewer.load_state_dict(state, strict=False)


def _timm_small(**kwargs):
    timm = pytest.importorskip('timm')
    from timm.models.focalnet import FocalNet as TimmFocalNet
    torch.manual_seed(0)
    model = TimmFocalNet(num_classes=10, drop_path_rate=0., **kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return timm, model


@pytest.mark.parametrize('variant', ['srf', 'large_switches'])
def test_timm_layout_file_loads_and_gives_timms_logits(variant: str, tmp_path, monkeypatch) -> None:
    """A file in timm's layout (``stem``, downsampling at the next stage, 1×1 convolutions, ``ls1.gamma``,
    ``norm1_post``, ``head.fc``) gives timm's features and logits, through init_cfg and through load_state_dict."""
    if variant == 'srf':
        kw = dict(embed_dim=16, depths=(1, 1, 2, 1), focal_levels=(2, ) * 4, focal_windows=(3, ) * 4)
        ours_kw = dict(embed_dims=16, depths=(1, 1, 2, 1), focal_levels=2, focal_windows=3)
    else:  # timm's overlapped stem, post-norm and layer scale (its large models), with our normalised modulator
        kw = dict(embed_dim=16, depths=(1, 1, 1, 1), focal_levels=(3, ) * 4, focal_windows=(5, ) * 4,
                  use_overlap_down=True, use_post_norm=True, layerscale_value=1e-4, normalize_modulator=True,
                  use_post_norm_in_modulation=True)
        ours_kw = dict(embed_dims=16, depths=(1, 1, 1, 1), focal_levels=3, focal_windows=5, use_conv_embed=True,
                       use_postln=True, use_layerscale=True, normalize_modulator=True, use_postln_in_modulation=True)
    _, theirs = _timm_small(**kw)
    path = str(tmp_path / 'timm.pth')
    torch.save(theirs.state_dict(), path)
    messages: List[str] = []
    monkeypatch.setattr(focalnet_module, 'log_info', messages.append)
    ours = FocalNet(**ours_kw, out_indices=(3, ), drop_path_rate=0., init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    ours.eval()
    assert '(timm layout)' in messages[-1] and 'missing (newly initialised): none' in messages[-1]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want_feat = theirs.forward_features(x)
        want_logits = theirs.forward_head(want_feat)
    head = {'head.weight': theirs.head.fc.weight, 'head.bias': theirs.head.fc.bias}
    with torch.no_grad():
        (got_feat, ) = ours(x)
    assert (got_feat - want_feat).abs().max().item() <= 1e-4
    assert (logits_of(ours, head, x) - want_logits).abs().max().item() <= 1e-4
    # the load pre-hook: timm's names straight into load_state_dict
    direct = FocalNet(**ours_kw, out_indices=(3, ), drop_path_rate=0.).eval()
    state = {k: v for k, v in theirs.state_dict().items() if not k.startswith('head.')}
    state = {('norm3.' + k[5:] if k.startswith('norm.') else k): v for k, v in state.items()}
    result = direct.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        assert torch.equal(direct(x)[0], got_feat)


@pytest.mark.parametrize('arch', ['tiny_srf', 'tiny_lrf'])
def test_timms_released_tiny_models_give_the_same_logits(arch: str, tmp_path) -> None:
    timm = pytest.importorskip('timm')
    torch.manual_seed(1)
    theirs = timm.create_model(f'focalnet_{arch}', num_classes=10).eval()
    path = str(tmp_path / f'focalnet_{arch}.pth')
    torch.save(theirs.state_dict(), path)
    ours = FocalNet(arch=arch, out_indices=(3, ), init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    ours.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = theirs(x)
    head = {'head.weight': theirs.head.fc.weight, 'head.bias': theirs.head.fc.bias}
    assert (logits_of(ours, head, x) - want).abs().max().item() <= 1e-4


def test_mmdet_checkpoint_layout_loads_through_the_backbone_prefix(fixture: dict, tmp_path) -> None:
    """An official mmdet 2.x release: ``{'meta', 'state_dict': {backbone.*, neck.*, ...}}``."""
    entry = fixture['det_lrf']
    state = {'backbone.' + k: v.float() for k, v in entry['state_dict'].items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(4, 4, 1, 1)
    path = str(tmp_path / 'focalnet_tiny_lrf_maskrcnn_1x.pth')
    torch.save({'meta': {'mmcv_version': '1.4.0', 'CLASSES': ('a', 'b')}, 'state_dict': state}, path)
    model = from_official(entry['kwargs'], init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    model.eval()
    data = entry['cases']['197x263']
    with torch.no_grad():
        got = model(data['input'].float())
    assert all((a - b).abs().max().item() <= 1e-4 for a, b in zip(got, data['features']))


@pytest.mark.parametrize('size', [(32, 32), (33, 47), (63, 100), (224, 225), (257, 129), (511, 511)])
def test_any_size_gives_ceil_strided_maps(size) -> None:
    model = FocalNet(arch='tiny_lrf', embed_dims=16, depths=(1, 1, 1, 1)).eval()
    h, w = size
    with torch.no_grad():
        outs = model(torch.randn(1, 3, h, w))
    for i, out in enumerate(outs):
        h, w = -(-h // (4 if i == 0 else 2)), -(-w // (4 if i == 0 else 2))
        assert out.shape == (1, 16 * 2 ** i, h, w) and torch.isfinite(out).all()


@pytest.mark.parametrize('with_cp', [False, True])
def test_frozen_stages_get_no_gradient_and_stay_in_eval(with_cp: bool) -> None:
    model = FocalNet(arch='tiny_srf', embed_dims=16, depths=(1, 1, 1, 1), frozen_stages=2, with_cp=with_cp,
                     drop_path_rate=0.1)
    # frozen from construction, kept frozen by train()
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    model.train()
    assert not model.layers[1].training and model.layers[2].training
    sum(o.sum() for o in model(torch.randn(2, 3, 64, 96))).backward()
    for name, p in model.named_parameters():
        frozen = name.startswith(('patch_embed.', 'layers.0.', 'layers.1.', 'norm0.', 'norm1.'))
        assert (p.grad is None) == frozen, name


def test_with_cp_computes_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = FocalNet(arch='tiny_lrf', embed_dims=16, depths=(1, 1, 2, 1), drop_path_rate=0.)
    cp = FocalNet(arch='tiny_lrf', embed_dims=16, depths=(1, 1, 2, 1), drop_path_rate=0., with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    for m in (plain, cp):
        sum((o ** 2).sum() for o in m(x)).backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), cp.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_every_release_preset_builds_with_its_layout() -> None:
    expected = {  # arch: (embed_dims, depths, levels, kernels of stage 1, switches)
        'tiny_srf': (96, (2, 2, 6, 2), 2, [3, 5], ''), 'base_lrf': (128, (2, 2, 18, 2), 3, [3, 5, 7], ''),
        'large_fl3': (192, (2, 2, 18, 2), 3, [5, 7, 9], 'conv postln ls'),
        'large_fl4': (192, (2, 2, 18, 2), 4, [3, 5, 7, 9], 'conv postln ls norm'),
        'huge_fl4': (352, (2, 2, 18, 2), 4, [3, 5, 7, 9], 'conv postln ls ln'),
        'base_iso': (768, (12, ), 3, [3, 5, 7], 'postln ls'),
    }
    for arch, (dims, depths, levels, kernels, switches) in expected.items():
        with torch.device('meta'):
            model = FocalNet(arch=arch)
        block = model.layers[0].blocks[0]
        assert (model.embed_dims, model.depths, model.focal_levels[0]) == (dims, depths, levels), arch
        assert block.modulation.kernel_sizes == kernels, arch
        assert model.use_conv_embed == ('conv' in switches), arch
        assert block.use_postln == ('postln' in switches) and (block.gamma_1 is not None) == ('ls' in switches)
        assert block.modulation.normalize_modulator == ('norm' in switches.split()), arch
        assert hasattr(block.modulation, 'ln') == ('ln' in switches.split()), arch
    assert FocalNet(arch='focalnet_tiny_lrf', focal_windows=9).focal_windows == (9, 9, 9, 9)


def test_released_sizes_have_the_official_parameter_counts() -> None:
    """Backbone + a 1000-class head = the official classifier's count (its final norm is our last output norm;
    our three other output norms add 4 * C0 * 7 / 2 ... a few thousand parameters, below the rounding)."""
    official = {'tiny_srf': 28.43, 'tiny_lrf': 28.65, 'small_lrf': 50.34, 'base_srf': 88.15, 'large_fl4': 207.28}
    for arch, millions in official.items():
        with torch.device('meta'):
            model = FocalNet(arch=arch, out_indices=(3, ))
        count = sum(p.numel() for p in model.parameters()) + model.num_features[-1] * 1000 + 1000
        assert abs(count / 1e6 - millions) < 0.006, arch


@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='tiny'), "unknown arch 'tiny'"),
    (dict(focal_windows=4), r'focal_windows\[0\]=4'),
    (dict(focal_levels=(2, 2, 2)), 'focal_levels has 3 entries but depths has 4'),
    (dict(focal_levels=0), r'focal_levels\[0\]=0'),
    (dict(out_indices=(0, 4)), r'out_indices=\(0, 4\)'),
    (dict(frozen_stages=5), 'frozen_stages=5'),
    (dict(drop_path_rate=1.0), 'drop_path_rate=1.0'),
    (dict(norm_cfg=dict(type='BN')), "norm_cfg type 'BN'"),
])
def test_bad_arguments_fail_at_construction_with_one_clear_message(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FocalNet(**kwargs)


def test_bad_checkpoints_fail_clearly(tmp_path) -> None:
    from mmfocal.models import FocalTransformer
    focal = str(tmp_path / 'focal.pth')
    torch.save({'model': FocalTransformer(arch='tiny', depths=(1, 1, 1, 1)).state_dict()}, focal)
    with pytest.raises(CheckpointMismatchError, match='Focal Transformer weights: use FocalTransformer'):
        FocalNet(init_cfg=dict(type='Pretrained', checkpoint=focal)).init_weights()
    wide = str(tmp_path / 'wide.pth')
    torch.save({'model': FocalNet(arch='base_srf', depths=(1, 1, 1, 1)).state_dict()}, wide)
    with pytest.raises(CheckpointMismatchError, match='another width or stem'):
        FocalNet(init_cfg=dict(type='Pretrained', checkpoint=wide)).init_weights()
    with pytest.raises(FileNotFoundError, match='releases/download/v1.0.0/focalnet_tiny_srf.pth'):
        FocalNet(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'focalnet_tiny_srf.pth'))).init_weights()
    with pytest.raises(ValueError, match='expects 3-channel images'):
        FocalNet(arch='tiny_srf', depths=(1, 1, 1, 1))(torch.randn(1, 1, 64, 64))


def test_fx_traces_the_backbone_and_the_trace_runs_at_other_sizes() -> None:
    model = FocalNet(arch='tiny_lrf', embed_dims=16, depths=(1, 1, 1, 1)).eval()
    traced = torch.fx.symbolic_trace(model)
    for size in ((64, 64), (97, 131)):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(traced(x), model(x)))


def test_offline_converter_writes_a_backbone_file_for_the_detection_windows(tmp_path) -> None:
    import subprocess
    import sys
    torch.manual_seed(0)
    _, theirs = _timm_small(embed_dim=96, depths=(1, 1, 1, 1), focal_levels=(2, ) * 4, focal_windows=(3, ) * 4)
    src, dst = str(tmp_path / 'timm.pth'), str(tmp_path / 'mm.pth')
    torch.save(theirs.state_dict(), src)
    tool = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'model_converters', 'focalnet2mmfocal.py')
    out = subprocess.run([sys.executable, tool, src, dst, '--arch', 'tiny_srf', '--focal-windows', '9'],
                         capture_output=True, text=True, check=True).stdout
    assert '(timm layout)' in out and '3->9 (4x), 5->11 (4x)' in out and 'norm -> norm3' in out
    saved = torch.load(dst, weights_only=True)
    model = FocalNet(arch='tiny_srf', depths=(1, 1, 1, 1), focal_windows=9)
    result = model.load_state_dict(saved['state_dict'], strict=False)
    assert sorted(result.missing_keys) == sorted(f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias'))
    assert not result.unexpected_keys and saved['meta']['layout'] == 'timm'
