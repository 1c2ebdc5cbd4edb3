"""The released ImageNet models through timm: registry, official logits, strict loading, features at any size."""

import os.path as osp
import pickle

import pytest
import timm
import torch

import mmfocal  # noqa: F401  (registers the timm models)
from mmfocal.models import FocalTransformer, FocalTransformerV2
from mmfocal.models.timm_models import RELEASED
from mmfocal.models.utils.focal_checkpoint import OFFICIAL_CHECKPOINT_BASE, CheckpointMismatchError
from test_parity_official_v2 import official_state_dict as official_v2_state_dict

FIXTURES = osp.join(osp.dirname(__file__), 'fixtures')
# the official README's parameter counts (M)
OFFICIAL_PARAMS = {
    'focal_tiny_patch4_window7_224': 28.9, 'focal_small_patch4_window7_224': 51.1,
    'focal_base_patch4_window7_224': 89.8, 'focal_tiny_useconv_patch4_window7_224': 30.8,
    'focal_small_useconv_patch4_window7_224': 53.1, 'focal_base_useconv_patch4_window7_224': 93.3,
    'focalv2_tiny_useconv_patch4_window7_224': 30.2, 'focalv2_small_useconv_patch4_window7_224': 51.5,
    'focalv2_base_useconv_patch4_window7_224': 91.2}
V1_TINY, V2_TINY = 'focal_tiny_patch4_window7_224', 'focalv2_tiny_useconv_patch4_window7_224'


@pytest.fixture(scope='module')
def v1_fixture() -> dict:
    return torch.load(osp.join(FIXTURES, 'focal_official_parity.pth'), weights_only=True)


@pytest.fixture(scope='module')
def v2_fixture() -> dict:
    return torch.load(osp.join(FIXTURES, 'focal_v2_official_parity.pth'), weights_only=True)


@pytest.fixture(scope='module')
def v2_file(v2_fixture, tmp_path_factory) -> str:
    """Focal-fast-T in the official file layout ({'model': state dict}, head and index buffers included)."""
    path = str(tmp_path_factory.mktemp('v2') / 'focalv2-tiny-useconv-is224-ws7.pth')
    torch.save({'model': official_v2_state_dict(v2_fixture['tiny/224x224'])}, path)
    return path


def test_every_release_is_listed_with_the_official_file_and_preprocessing() -> None:
    assert set(timm.list_models('focal*')) >= set(OFFICIAL_PARAMS) == set(RELEASED)
    assert set(timm.list_pretrained('focal*_patch4_window7_224')) == {f'{n}.ms_in1k' for n in OFFICIAL_PARAMS}
    for name, (_, _, _, file, _, _) in RELEASED.items():
        cfg = timm.models.get_pretrained_cfg(name).to_dict()
        assert cfg['url'] == OFFICIAL_CHECKPOINT_BASE + file
        # the official eval: short side 256 (bicubic), centre crop 224, ImageNet mean / std
        assert (cfg['input_size'], cfg['crop_pct'], cfg['crop_mode'], cfg['interpolation']) == (
            (3, 224, 224), 0.875, 'center', 'bicubic')
        assert cfg['mean'] == timm.data.IMAGENET_DEFAULT_MEAN and cfg['std'] == timm.data.IMAGENET_DEFAULT_STD


@pytest.mark.parametrize('name', sorted(OFFICIAL_PARAMS))
def test_each_model_builds_with_the_official_parameter_count(name: str) -> None:
    model = timm.create_model(name)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params - OFFICIAL_PARAMS[name]) <= 0.005 * OFFICIAL_PARAMS[name], params
    assert isinstance(model.layers[0].blocks[0], type(FocalTransformerV2().layers[0].blocks[0]) if 'v2' in name
                      else type(FocalTransformer(depths=(1, 1, 1, 1)).layers[0].blocks[0]))


def test_data_config_gives_the_official_transform() -> None:
    model = timm.create_model(V1_TINY, pretrained=False)
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    import torchvision.transforms as T
    resize, crop = transform.transforms[:2]
    assert isinstance(resize, T.Resize) and resize.size == 256
    assert resize.interpolation == T.InterpolationMode.BICUBIC
    assert isinstance(crop, T.CenterCrop) and tuple(crop.size) == (224, 224)


@pytest.mark.parametrize('case', ['plain/224x224', 'plain/240x352', 'conv_embed/224x224'])
def test_v1_logits_and_features_equal_the_official_code(v1_fixture: dict, case: str, tmp_path) -> None:
    name, size = case.split('/')
    entry = v1_fixture[name]
    path = str(tmp_path / 'official.pth')
    torch.save({'model': {k: v.float() if v.is_floating_point() else v for k, v in entry['state_dict'].items()}},
               path)
    kw = entry['kwargs']
    arch = dict(embed_dims=kw['embed_dim'], depths=kw['depths'], num_heads=kw['num_heads'], drop_path_rate=0.)
    variant = 'focal_tiny_useconv_patch4_window7_224' if kw.get('use_conv_embed') else V1_TINY
    # the file's head has 10 classes: strict loading of every tensor, nothing missing or unexpected
    model = timm.create_model(variant, pretrained=True, num_classes=10, **arch,
                              pretrained_cfg_overlay=dict(file=path, num_classes=10)).eval()
    data = entry['cases'][size]
    x = data['input'].float()
    with torch.no_grad():
        logits = model(x)
        final, maps = model.forward_intermediates(x)
    assert (logits - data['logits']).abs().max() <= 1e-4
    for i, (got, want) in enumerate(zip(maps, data['features'])):
        assert got.shape == want.shape and (got - want).abs().max() <= 1e-4, f'stage {i}'
    features = timm.create_model(variant, pretrained=True, features_only=True, **arch,
                                 pretrained_cfg_overlay=dict(file=path, num_classes=10)).eval()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(features(x), maps))


@pytest.mark.parametrize('case', ['tiny/224x224', 'tiny/224x448'])
def test_focal_fast_logits_equal_the_official_code(v2_fixture: dict, case: str, v2_file: str) -> None:
    model = timm.create_model(V2_TINY, pretrained=True, pretrained_cfg_overlay=dict(file=v2_file)).eval()
    entry = v2_fixture[case]
    with torch.no_grad():
        logits = model(entry['input'])
        maps = model.forward_intermediates(entry['input'], intermediates_only=True)
    assert logits.shape == (1, 1000) and (logits - entry['logits']).abs().max() <= 1e-4
    for i, (got, want) in enumerate(zip(maps, entry['features'])):
        assert (got - want).abs().max() <= 1e-4, f'stage {i}'


def test_new_head_replaces_only_the_classifier(v2_file: str) -> None:
    full = timm.create_model(V2_TINY, pretrained=True, pretrained_cfg_overlay=dict(file=v2_file))
    ten = timm.create_model(V2_TINY, pretrained=True, num_classes=10, pretrained_cfg_overlay=dict(file=v2_file))
    assert ten.get_classifier().out_features == 10
    theirs = full.state_dict()
    for key, value in ten.state_dict().items():
        if key.startswith('head.'):
            assert value.shape[0] == 10
        else:
            assert torch.equal(value, theirs[key]), key
    x = torch.rand(2, 3, 96, 128)
    ten.eval()
    with torch.no_grad():
        pooled = ten.forward_head(ten.forward_features(x), pre_logits=True)
        assert pooled.shape == (2, 768)
        assert torch.allclose(ten.get_classifier()(pooled), ten(x), atol=1e-6)
        ten.reset_classifier(0, 'max')
        assert ten(x).shape == (2, 768)
        ten.reset_classifier(3, '')
        assert ten.forward_head(ten.forward_features(x), pre_logits=True).shape == (2, 768, 3, 4)


@pytest.mark.parametrize('size', [(224, 224), (197, 263)])
@pytest.mark.parametrize('v2', [False, True])
def test_features_only_equal_the_backbone_at_any_size(v2: bool, size: tuple, v2_file: str, tmp_path) -> None:
    """The timm feature maps are the backbone's stage outputs, and the final-normed last stage its norm3 output."""
    if v2:
        variant, backbone_cls, path = V2_TINY, FocalTransformerV2, v2_file
    else:
        variant, backbone_cls = V1_TINY, FocalTransformer
        model = timm.create_model(V1_TINY)  # random weights, saved in the official layout (norm, head)
        state = {('norm.' + k[6:] if k.startswith('norm3.') else k): v for k, v in model.state_dict().items()}
        path = str(tmp_path / 'v1.pth')
        torch.save({'model': state}, path)
    features = timm.create_model(variant, pretrained=True, features_only=True, out_indices=(0, 1, 2, 3),
                                 pretrained_cfg_overlay=dict(file=path)).eval()
    assert features.feature_info.channels() == [96, 192, 384, 768]
    assert features.feature_info.reduction() == [4, 8, 16, 32]
    backbone = backbone_cls(arch='tiny', out_indices=(3, ), drop_path_rate=0.).eval()
    backbone.load_pretrained(path)  # the mmdet / mmseg way of loading the same file
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        maps = features(x)
        raw = backbone.forward_stages(x, (0, 1, 2, 3))
        (normed, ) = backbone(x)
        final = timm.create_model(variant, pretrained=True, pretrained_cfg_overlay=dict(file=path)).eval()
        assert torch.equal(final.forward_features(x), normed)
    for i, got in enumerate(maps):
        h, w = raw[i][1]
        assert got.shape == (1, 96 * 2 ** i, h, w)
        assert torch.equal(got, raw[i][0].transpose(1, 2).reshape(1, -1, h, w)), f'stage {i}'
    if size == (197, 263):  # the plain stem pads to a multiple of 4, the conv stem is a 7x7 stride-4 conv
        want = [(49, 66), (25, 33), (13, 17), (7, 9)] if v2 else [(50, 66), (25, 33), (12, 16), (6, 8)]
        assert [tuple(m.shape[2:]) for m in maps] == want


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    model = timm.create_model(V2_TINY, num_classes=4, depths=(1, 1, 2, 1), drop_path_rate=0.)
    x = torch.rand(2, 3, 64, 64)
    grads = []
    for enable in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enable)
        model(x).square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))


def test_bad_files_are_clear_errors_and_never_run_code(tmp_path, v2_file: str) -> None:
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    evil = tmp_path / 'evil.pth'
    with open(evil, 'wb') as f:
        pickle.dump({'model': Payload()}, f)
    with pytest.raises(RuntimeError, match='Could not load .* safely'):
        timm.create_model(V1_TINY, pretrained=True, pretrained_cfg_overlay=dict(file=str(evil)))
    assert not marker.exists()
    with pytest.raises(CheckpointMismatchError, match='Focal-fast|v2|family'):
        timm.create_model(V1_TINY, pretrained=True, pretrained_cfg_overlay=dict(file=v2_file))
    other = tmp_path / 'other.pth'
    torch.save({'model': {'conv1.weight': torch.zeros(3)}}, other)
    with pytest.raises(CheckpointMismatchError, match='No Focal Transformer weights'):
        timm.create_model(V1_TINY, pretrained=True, pretrained_cfg_overlay=dict(file=str(other)))


def test_classifier_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match='in_chans'):
        timm.create_model(V1_TINY, in_channels=3)
    with pytest.raises(TypeError, match='features_only=True'):
        timm.create_model(V1_TINY, frozen_stages=1)
    with pytest.raises(TypeError, match='features_only=True'):
        timm.create_model(V1_TINY, out_indices=(1, 2))
    with pytest.raises(ValueError, match="global_pool='token'"):
        timm.create_model(V1_TINY, global_pool='token')


def test_converted_file_with_its_head_loads_as_the_official_one(v2_file: str, tmp_path, monkeypatch) -> None:
    import runpy
    out = str(tmp_path / 'converted.pth')
    monkeypatch.setattr('sys.argv', ['focal2mmfocal.py', v2_file, out, '--keep-head'])
    runpy.run_path(osp.join(osp.dirname(FIXTURES), '..', 'tools', 'model_converters', 'focal2mmfocal.py'),
                   run_name='__main__')
    a = timm.create_model(V2_TINY, pretrained=True, pretrained_cfg_overlay=dict(file=out))
    b = timm.create_model(V2_TINY, pretrained=True, pretrained_cfg_overlay=dict(file=v2_file))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
