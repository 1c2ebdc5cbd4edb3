"""Parameters and FLOPs of a config's model.

Usage:
    python tools/analysis/get_flops.py configs/mask_rcnn/focal_tiny_1x.py [--shape 800 1280]

FLOPs are multiply-accumulates (the paper's and fvcore's convention) for one image of the given size
(default: 1280x800 for detection, 512x512 for UPerNet). No weights are loaded.
"""

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), help='input height and width')
    args = parser.parse_args()
    warnings.filterwarnings('ignore')
    from mmengine.config import Config

    from mmfocal.utils.complexity import complexity
    from mmfocal.apis.model_index import paper_complexity
    result = complexity(Config.fromfile(args.config), tuple(args.shape) if args.shape else None)
    h, w = result['shape']
    paper = paper_complexity(args.config)
    print(f'config: {args.config}\ninput: 1x3x{h}x{w}\n'
          f'params: {result["params"] / 1e6:.2f} M (backbone {result["backbone_params"] / 1e6:.2f} M)\n'
          f'FLOPs: {result["flops"] / 1e9:.1f} G')
    if paper[0] is not None:
        print(f'paper: {paper[0]} M params, {paper[1]} G FLOPs')


if __name__ == '__main__':
    main()
