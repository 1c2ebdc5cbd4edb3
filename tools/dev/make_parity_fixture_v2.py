"""Generate the Focal-fast (v2) parity fixture used by ``tests/test_parity_official_v2.py``.

Builds the official v2 model (microsoft/Focal-Transformer, ``classification/focal_transformer_v2.py``, read
from the user's checkout, never copied into this project) with the released Focal-fast-T and -S shapes, at
224×224 and 224×448 (T) and 224×224 (S), runs one image, and saves per case: the input, the output of the
last block of every stage (before downsampling) as NCHW fp32, the logits of the 1000-class head, the official
state-dict layout (names, shapes, dtypes), and the official nearest-key buffers of the first block of every stage.

The weights are not stored (Focal-fast-S has 51 M): :func:`deterministic_weights` makes them from the
parameter names with integer arithmetic, identical on every machine and torch version, and the test
makes the same ones.

Usage:
    python tools/dev/make_parity_fixture_v2.py PATH/TO/focal_transformer_v2.py \
        tests/fixtures/focal_v2_official_parity.pth
"""

import argparse
import importlib.util
import os.path as osp
import sys
import warnings
import zlib
from typing import Dict, Iterable, List, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from make_parity_fixture import stage_features  # noqa: E402  (same hooks for the v1 and v2 models)

# The released configs focalv2_{tiny,small}_useconv_patch4_window7_224 (drop path off for inference).
ARCHS = {
    'tiny': dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]),
    'small': dict(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24]),
}
COMMON = dict(window_size=7, focal_levels=[2, 2, 2, 2], focal_windows=[7, 5, 3, 1], expand_sizes=[3, 3, 3, 3],
              focal_pool='fc', focal_topK=128, use_conv_embed=True, use_shift=False, mlp_ratio=4.,
              drop_path_rate=0.)
CASES: Dict[str, List[Tuple[int, int]]] = {'tiny': [(224, 224), (224, 448)], 'small': [(224, 224)]}


def _hash_uniform(n: int, seed: int) -> torch.Tensor:
    """n values in [-0.5, 0.5) from an integer hash (murmur3's finaliser) of (index, seed): exact everywhere."""
    mask = (1 << 32) - 1
    x = (torch.arange(n, dtype=torch.int64) + ((seed * 0x9E3779B1) & mask)) & mask
    x = ((x ^ (x >> 16)) * 0x85EBCA6B) & mask
    x = ((x ^ (x >> 13)) * 0xC2B2AE35) & mask
    x = x ^ (x >> 16)
    return x.double() / float(1 << 32) - 0.5


def deterministic_weights(shapes: Iterable[Tuple[str, Tuple[int, ...]]]) -> Dict[str, torch.Tensor]:
    """Parameter values from names and shapes alone, rounded to fp16-representable fp32.

    Args:
        shapes: (official parameter name, shape) pairs.

    Returns:
        Name -> fp32 tensor: LayerNorm weights ~1, fc-pooling weights ~1/49, the rest small.
    """
    out = {}
    for name, shape in shapes:
        n = 1
        for s in shape:
            n *= s
        u = _hash_uniform(n, zlib.crc32(name.encode())).view(*shape)
        if 'norm' in name and name.endswith('weight'):
            value = 1 + 0.2 * u
        elif 'pool_layers' in name:
            value = 1. / 49 + 0.04 * u
        else:
            value = 0.1 * u
        out[name] = value.float().half().float()
    return out


def load_official(path: str):
    """Import the official v2 module from a file path.

    It imports ``timm.data.transforms._pil_interp``, which newer timm releases renamed; the name is
    provided for the import only (the model never uses it).
    """
    import timm.data.transforms as timm_transforms
    if not hasattr(timm_transforms, '_pil_interp'):
        timm_transforms._pil_interp = timm_transforms.str_to_pil_interp
    spec = importlib.util.spec_from_file_location('official_focal_transformer_v2', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('official_py', help='path to classification/focal_transformer_v2.py of the official repo')
    parser.add_argument('out', help='output .pth')
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    official = load_official(args.official_py)
    fixture: Dict[str, dict] = {}
    for arch, sizes in CASES.items():
        for h, w in sizes:
            model = official.FocalTransformer(img_size=(h, w), num_classes=1000, **COMMON, **ARCHS[arch]).eval()
            params = deterministic_weights((n, tuple(p.shape)) for n, p in model.named_parameters())
            missing, unexpected = model.load_state_dict(params, strict=False)
            assert not unexpected and all('topk_cloest' in k or 'window_coords' in k for k in missing), missing
            # ~uniform(-2, 2), like a normalised image
            x = deterministic_weights([('input', (1, 3, h, w))])['input'] * 4
            feats = stage_features(official, model, x)
            with torch.no_grad():
                logits = model(x)  # the 1000-class head on the final norm's average, for the timm models
            state = model.state_dict()
            fixture[f'{arch}/{h}x{w}'] = dict(
                arch=arch, input=x, features=feats, logits=logits,
                layout=[(k, tuple(v.shape), str(v.dtype)) for k, v in state.items()],
                nearest={f'layers.{i}.{level}': state[f'layers.{i}.blocks.0.attn.topk_cloest_indice_{level}'].int()
                         for i in range(4) for level in range(2)})
            print(arch, (h, w), [tuple(f.shape) for f in feats], [f'{f.abs().max():.3g}' for f in feats])
    torch.save(fixture, args.out)
    print('saved', args.out, file=sys.stderr)


if __name__ == '__main__':
    main()
