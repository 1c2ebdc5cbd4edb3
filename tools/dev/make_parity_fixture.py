"""Generate the official-parity fixture used by ``tests/test_parity_official.py``.

Builds the official Focal Transformer v1 (microsoft/Focal-Transformer,
``classification/focal_transformer.py``, given by path; it is never copied into this project)
for small configurations with random weights, runs it at 224×224 and at 240×352 (stage maps
60×88 ... 7×11, so blocks pad internally), and saves the state dict, the output of the last
block of every stage (before downsampling) as NCHW tensors and the model's logits (10 classes).

Weights and inputs are rounded to fp16-representable values and stored as fp16 (keeps the
fixture small); the features are computed in fp32 from exactly those values and stored in fp32.

Usage:
    python tools/dev/make_parity_fixture.py PATH/TO/focal_transformer.py tests/fixtures/focal_official_parity.pth
"""

import argparse
import importlib.util
import warnings
from typing import Dict, List, Tuple

import torch

CONFIGS = {
    # name: (official constructor kwargs, input sizes)
    'plain': (dict(embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8]), [(224, 224), (240, 352)]),
    'conv_embed': (dict(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 4], use_conv_embed=True),
                   [(224, 224)]),
}
COMMON = dict(window_size=7, focal_levels=[2, 2, 2, 2], focal_windows=[7, 5, 3, 1], expand_sizes=[3, 3, 3, 3],
              focal_pool='fc', expand_layer='all', use_shift=False, mlp_ratio=4., drop_path_rate=0.,
              num_classes=10)


def load_official(path: str):
    """Import the official module from a file path."""
    spec = importlib.util.spec_from_file_location('official_focal_transformer', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Give every parameter a random, fp16-representable value (bias tables included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if 'relative_position_bias_table' in name:
                value = 0.5 * noise
            elif 'norm' in name and name.endswith('weight'):
                value = 1 + 0.1 * noise
            elif 'pool_layers' in name:
                value = 1. / 49 + 0.02 * noise
            else:
                value = 0.05 * noise
            p.copy_(value.half().float())


def stage_features(module, model: torch.nn.Module, x: torch.Tensor) -> List[torch.Tensor]:
    """Outputs of the last block of every stage, before downsampling, as NCHW."""
    feats: List[torch.Tensor] = []
    hooks = []
    for layer in model.layers:
        h, w = layer.input_resolution
        hooks.append(layer.blocks[-1].register_forward_hook(
            lambda m, i, o, h=h, w=w: feats.append(o.view(o.shape[0], h, w, -1).permute(0, 3, 1, 2).contiguous())))
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return feats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('official_py', help='path to classification/focal_transformer.py of the official repo')
    parser.add_argument('out', help='output .pth')
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    official = load_official(args.official_py)
    torch.manual_seed(0)
    fixture: Dict[str, dict] = {}
    for seed, (name, (kwargs, sizes)) in enumerate(CONFIGS.items()):
        state = None
        cases: Dict[str, Tuple[torch.Tensor, List[torch.Tensor]]] = {}
        for h, w in sizes:
            model = official.FocalTransformer(img_size=(h, w), **COMMON, **kwargs).eval()
            if state is None:
                randomize(model, seed)
                state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                model.load_state_dict(state)
            x = torch.randn(1, 3, h, w).half().float()
            with torch.no_grad():
                logits = model(x)  # the classifier head on the final norm's average, for the timm models
            cases[f'{h}x{w}'] = dict(input=x.half(), features=stage_features(official, model, x), logits=logits)
        fixture[name] = dict(
            kwargs=dict(COMMON, **kwargs),
            state_dict={k: (v.half() if v.is_floating_point() else v) for k, v in state.items()},
            cases=cases)
        print(name, {k: [tuple(f.shape) for f in c['features']] for k, c in cases.items()})
    torch.save(fixture, args.out)


if __name__ == '__main__':
    main()
