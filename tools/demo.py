"""The README's main-job command (``make demo``).

Until the training tools land, this runs the Focal-T backbone on a synthetic image and prints
its multi-scale features; it trains nothing and evaluates nothing.
"""

import time

import torch

import mmfocal
from mmdet.registry import MODELS


def main() -> None:
    """Build Focal-T through mmdet's registry and print its feature pyramid for one 800×1216 image."""
    model = MODELS.build(dict(type='FocalTransformer', arch='tiny', focal_windows=(15, 13, 9, 7))).eval()
    x = torch.rand(1, 3, 800, 1216)
    start = time.perf_counter()
    with torch.no_grad():
        feats = model(x)
    print(f'mmfocal {mmfocal.__version__}: Focal-T (random weights), input {tuple(x.shape)}, '
          f'{time.perf_counter() - start:.1f} s on {torch.get_num_threads()} threads')
    for i, f in enumerate(feats):
        print(f'  stage {i + 1}: {tuple(f.shape)} (stride {x.shape[-1] // f.shape[-1]})')
    print('Training and evaluation on the embedded demo dataset are not wired up yet (issue #6).')


if __name__ == '__main__':
    main()
