"""What a user with only torch and torchvision gets from ``pip install mmfocal[timm,deploy]``.

Run by tests/test_packaging.py inside a fresh virtualenv holding nothing else: no OpenMMLab package is installed,
importing mmfocal needs none, and the timm models, their features, ``torch.compile``, ``torch.export`` and ONNX
export all work and compute what eager PyTorch computes.
"""

import importlib.util
import sys
import tempfile

import torch

import mmfocal

missing = [m for m in ('mmcv', 'mmengine', 'mmdet', 'mmseg', 'mmpretrain') if importlib.util.find_spec(m)]
assert not missing, f'installed although nothing asked for them: {missing}'
assert not [m for m in sys.modules if m.split('.')[0] == 'timm'], 'import mmfocal imported timm'

import onnxruntime  # noqa: E402
import timm  # noqa: E402

NAMES = sorted(timm.list_models('focal*_patch4_window7_224'))
assert len(NAMES) == 9, NAMES
SMALL = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))
x = torch.rand(1, 3, 97, 131)  # not a multiple of the patch, the window or the strides

for name in NAMES:
    released = timm.create_model(name, device='meta')  # the released size without its memory
    assert released.num_features == (1024 if 'base' in name else 768), (name, released.num_features)
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7, **SMALL).eval()
    features = timm.create_model(name, features_only=True, **SMALL).eval()
    with torch.no_grad():
        assert model(x).shape == (1, 7)
        maps = features(x)
        taps = model.forward_intermediates(x, intermediates_only=True)
    want = ([(32, 24, 33), (64, 12, 17), (128, 6, 9), (256, 3, 5)] if 'useconv' in name  # overlapping convs
            else [(32, 25, 33), (64, 12, 16), (128, 6, 8), (256, 3, 4)])  # stem pads to 4, then floor halves
    assert [tuple(m.shape[1:]) for m in maps] == [tuple(t.shape[1:]) for t in taps] == want, name
    print(name, 'ok')


def close(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


for name in ('focal_tiny_patch4_window7_224', 'focalv2_tiny_useconv_patch4_window7_224'):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7, **SMALL).eval()
    with torch.no_grad():
        want = model(x)
        compiled = torch.compile(model)
        assert close(compiled(x), want) < 1e-4, name
        exported = torch.export.export(model, (x, ))
        assert close(exported.module()(x), want) < 1e-4, name
        path = tempfile.mktemp(suffix='.onnx')
        v1 = name.startswith('focal_')  # v1 graphs run at any size; Focal-fast's keys are chosen per size
        torch.onnx.export(model, (x, ), path, dynamo=False, input_names=['image'], output_names=['logits'],
                          dynamic_axes={'image': {2: 'h', 3: 'w'}} if v1 else None)
        session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
        for shape in ((97, 131), (64, 200)) if v1 else ((97, 131), ):
            xi = torch.rand(1, 3, *shape)
            got = torch.from_numpy(session.run(None, {'image': xi.numpy()})[0])
            assert close(got, model(xi)) < 1e-4, (name, shape)
    print(name, 'compile, export, onnx ok')
print('mmfocal', mmfocal.__version__, 'torch', torch.__version__, 'timm', timm.__version__)
