"""Generate the FocalNet official-parity fixture used by ``tests/test_focalnet.py``.

Runs the official code of microsoft/FocalNet (given by path to a checkout; never copied into this project) on
small configurations with random weights:

* the detection backbone ``detection/mmdet/models/backbones/focalnet.py`` (imported with its three mmdet 2.x /
  mmcv imports stubbed: it needs none of them to build and run) at 224×224 and at sizes that are not multiples
  of 32 — every ``out_indices`` output;
* the classifier ``classification/focalnet.py`` with every switch of the large models (overlapped stem, post-norm,
  layer scale, normalised modulator, post-LN in the modulation) and the isotropic layout — the logits at 224×224.

Weights and inputs are rounded to fp16-representable values and stored as fp16; outputs are computed in fp32
from exactly those values and stored in fp32.

Usage:
    python tools/dev/make_parity_fixture_focalnet.py PATH/TO/FocalNet tests/fixtures/focalnet_official_parity.pth
"""

import argparse
import importlib.util
import os.path as osp
import sys
import types
import warnings

import torch

DETECTION = {
    # name: (detection-backbone kwargs, input sizes)
    'det_lrf': (dict(embed_dim=16, depths=[1, 1, 2, 1], focal_levels=[3, 3, 3, 3], focal_windows=[9, 9, 9, 9],
                     out_indices=(0, 1, 2, 3)), [(224, 224), (197, 263), (250, 330)]),
    'det_mixed_ls': (dict(embed_dim=16, depths=[1, 1, 1, 1], focal_levels=[2, 3, 2, 3], focal_windows=[11, 9, 9, 7],
                          out_indices=(1, 2, 3), use_layerscale=True), [(224, 224), (161, 97)]),
}
CLASSIFIER = {
    'cls_srf': (dict(embed_dim=16, depths=[1, 1, 2, 1], focal_levels=[2, 2, 2, 2], focal_windows=[3, 3, 3, 3]),
                (224, 224)),
    'cls_large_switches': (dict(embed_dim=16, depths=[1, 1, 1, 1], focal_levels=[4, 4, 4, 4],
                                focal_windows=[3, 3, 3, 3], use_conv_embed=True, use_postln=True,
                                use_layerscale=True, normalize_modulator=True, use_postln_in_modulation=True),
                           (224, 224)),
    'cls_iso': (dict(embed_dim=32, depths=[3], patch_size=16, focal_levels=[3], focal_windows=[3],
                     use_layerscale=True, use_postln=True), (224, 224)),
}


# what the detection file's `@BACKBONES.register_module()` needs: a decorator that returns the class
STUB_REGISTRY = 'class BACKBONES:\n    register_module = staticmethod(lambda: (lambda c: c))'


def load_module(name: str, path: str, replace: dict = None) -> types.ModuleType:
    """Import a source file as a module, with some lines of its text replaced first (the stubbed imports)."""
    source = open(path).read()
    for old, new in (replace or {}).items():
        assert old in source, f'{old!r} not in {path}'
        source = source.replace(old, new)
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(compile(source, path, 'exec'), module.__dict__)
    return module


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every parameter random and fp16-representable (norm weights around 1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if ('norm' in name or '.ln.' in name) and name.endswith('weight'):
                value = 1 + 0.1 * noise
            elif 'gamma' in name:
                value = 0.5 + 0.1 * noise
            else:
                value = 0.05 * noise
            p.copy_(value.half().float())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('repo', help='a checkout of microsoft/FocalNet')
    parser.add_argument('out', help='output .pth')
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    det_file = osp.join(args.repo, 'detection/mmdet/models/backbones/focalnet.py')
    det = load_module('official_focalnet_det', det_file, {
        'from mmcv_custom import load_checkpoint': 'load_checkpoint = None',
        'from mmdet.utils import get_root_logger': 'get_root_logger = None',
        'from ..builder import BACKBONES': STUB_REGISTRY,
    })
    cls = load_module('official_focalnet_cls', osp.join(args.repo, 'classification/focalnet.py'))
    fixture = {}
    for seed, (name, (kwargs, sizes)) in enumerate(DETECTION.items()):
        torch.manual_seed(seed)
        model = det.FocalNet(drop_path_rate=0., **kwargs)
        model.init_weights()
        randomize(model, seed)
        model.eval()
        cases = {}
        for h, w in sizes:
            x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(100 + h)).half().float()
            with torch.no_grad():
                cases[f'{h}x{w}'] = dict(input=x.half(), features=[f.float() for f in model(x)])
        fixture[name] = dict(kwargs=kwargs, state_dict={k: v.half() for k, v in model.state_dict().items()},
                             cases=cases)
    for seed, (name, (kwargs, (h, w))) in enumerate(CLASSIFIER.items(), start=10):
        torch.manual_seed(seed)
        model = cls.FocalNet(num_classes=10, drop_path_rate=0., **kwargs)
        randomize(model, seed)
        model.eval()
        x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed)).half().float()
        with torch.no_grad():
            logits = model(x)
        fixture[name] = dict(kwargs=kwargs, state_dict={k: v.half() for k, v in model.state_dict().items()},
                             input=x.half(), logits=logits.float())
    torch.save(fixture, args.out)
    print(f'wrote {args.out}: ' + ', '.join(fixture))


if __name__ == '__main__':
    main()
