"""The graph-capturing tools beside torch.compile: torch.fx (timm's and torchvision's feature extractors, FX
quantization, mmengine's FX-based tools), torch.export (one graph per input size), and building on the meta device
(timm's ``device='meta'``); plus timm's first-convolution adaptation of pretrained weights (``in_chans``)."""

import pytest
import torch
import torch.fx

from mmfocal.models import FocalClassifier, FocalTransformer, FocalTransformerV2, FocalV2Classifier
from mmfocal.ops import clear_geometry_cache

SMALL = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), drop_path_rate=0.)
BACKBONES = [FocalTransformer, FocalTransformerV2]
CLASSIFIERS = [FocalClassifier, FocalV2Classifier]
TORCH = tuple(int(v) for v in torch.__version__.split('+')[0].split('.')[:2])


def _model(cls: type, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    model = cls(**{**SMALL, **kwargs})
    if cls in BACKBONES:  # the classifiers initialise themselves
        model.init_weights()
    return model


def _max_diff(a, b) -> float:
    a = a if isinstance(a, (tuple, list)) else (a, )
    b = b if isinstance(b, (tuple, list)) else (b, )
    assert len(a) == len(b)
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


@pytest.mark.parametrize('cls', BACKBONES + CLASSIFIERS, ids=['v1', 'v2', 'v1_classifier', 'v2_classifier'])
def test_fx_symbolic_trace_equals_eager_at_any_size(cls: type) -> None:
    model = _model(cls, **({'num_classes': 5} if cls in CLASSIFIERS else {})).eval()
    traced = torch.fx.symbolic_trace(model)
    # the stages are one recorded call: the traced graph runs at sizes other than the traced one
    assert any(n.op == 'call_function' and n.target.__name__ == 'run_stages' for n in traced.graph.nodes)
    with torch.no_grad():
        for shape in ((64, 64), (97, 131)):
            x = torch.rand(2, 3, *shape)
            assert _max_diff(traced(x), model(x)) == 0, shape


@pytest.mark.parametrize('cls', CLASSIFIERS, ids=['v1', 'v2'])
def test_fx_feature_extractor_trains_every_parameter(cls: type) -> None:
    from torchvision.models.feature_extraction import create_feature_extractor
    model = _model(cls, num_classes=5).train()
    extractor = create_feature_extractor(model, return_nodes={'head': 'logits'})
    x = torch.rand(2, 3, 64, 96)
    torch.manual_seed(1)
    extractor(x)['logits'].pow(2).mean().backward()
    grads = {n: p.grad for n, p in extractor.named_parameters()}
    assert grads and all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    torch.manual_seed(1)
    model.zero_grad()
    model(x).pow(2).mean().backward()
    want = dict(model.named_parameters())
    assert max(float((g - want[n].grad).abs().max()) for n, g in grads.items()) < 1e-6


@pytest.mark.skipif(TORCH < (2, 4), reason='torch.export is tested on torch >= 2.4 (the default stack)')
@pytest.mark.parametrize('cls', BACKBONES, ids=['v1', 'v2'])
def test_torch_export_equals_eager_at_an_odd_size(cls: type) -> None:
    model = _model(cls).eval()
    x = torch.rand(1, 3, 97, 131)
    clear_geometry_cache()  # the gather tables are built inside the export, from its static sizes
    exported = torch.export.export(model, (x, ))
    with torch.no_grad():
        assert _max_diff(exported.module()(x), model(x)) < 1e-5


@pytest.mark.parametrize('cls', CLASSIFIERS, ids=['v1', 'v2'])
def test_built_on_the_meta_device_then_materialised_computes_as_built_on_the_cpu(cls: type) -> None:
    from timm.models._manipulate import reinit_non_persistent_buffers
    reference = _model(cls, num_classes=5).eval()
    meta = cls(**SMALL, num_classes=5, device='meta')
    assert {t.device.type for t in list(meta.parameters()) + list(meta.buffers())} == {'meta'}
    x = torch.rand(1, 3, 64, 64)
    assert meta(x.to('meta')).shape == (1, 5)  # shapes only, nothing allocated
    meta.to_empty(device='cpu')
    reinit_non_persistent_buffers(meta)  # the index buffers, which no checkpoint holds
    meta.load_state_dict(reference.state_dict())
    with torch.no_grad():
        assert torch.equal(meta.eval()(x), reference(x))


@pytest.mark.parametrize('in_chans', [1, 4])
def test_timm_adapts_the_stem_of_pretrained_weights_to_in_chans(tmp_path, in_chans: int) -> None:
    import timm

    import mmfocal  # noqa: F401
    name = 'focal_tiny_patch4_window7_224'
    torch.manual_seed(0)
    source = timm.create_model(name, **SMALL)
    state = {('norm.' + k[6:] if k.startswith('norm3.') else k): v for k, v in source.state_dict().items()}
    path = str(tmp_path / 'official_layout.pth')
    torch.save({'model': state}, path)  # the official file layout: {'model': ...}, the final norm as norm.*
    model = timm.create_model(name, pretrained=True, in_chans=in_chans, num_classes=3,
                              pretrained_cfg_overlay=dict(file=path), **SMALL)
    stem, original = model.patch_embed.proj.weight, source.patch_embed.proj.weight
    assert stem.shape[1] == in_chans
    if in_chans == 1:  # timm sums the RGB filters for one channel
        assert torch.allclose(stem, original.sum(1, keepdim=True))
    else:  # and repeats them, rescaled by 3 / in_chans, for more
        assert torch.allclose(stem[:, :3], original * 3 / in_chans)
    assert torch.equal(model.layers[0].blocks[0].attn.qkv.weight, source.layers[0].blocks[0].attn.qkv.weight)
    assert model(torch.rand(1, in_chans, 64, 64)).shape == (1, 3)
