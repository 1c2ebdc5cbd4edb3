"""Convert a FocalNet checkpoint of any released layout for mmfocal's ``FocalNet`` backbone (offline).

Reads the official classification releases (``{'model': ...}``), the official mmdet 2.x / mmseg 0.x releases
(``{'state_dict': {backbone.*, ...}}``), FocalNet-DINO files (``backbone.0.*``) and timm's files; writes the
backbone's tensors under the official names as ``{'state_dict': ..., 'meta': ...}``: the classifier head
dropped, the final ``norm`` kept as the last stage's output norm (``norm3``, or ``norm0`` for the isotropic
models). With ``--focal-windows`` / ``--focal-levels`` the focal kernels and gate rows are adapted to that
configuration as the official detection loader does (the backbone also does it when it loads the file).

Usage:
    python tools/model_converters/focalnet2mmfocal.py focalnet_tiny_lrf.pth focalnet_tiny_lrf_mm.pth
    python tools/model_converters/focalnet2mmfocal.py focalnet_tiny_lrf.pth out.pth --arch tiny_lrf --focal-windows 9
    # FocalNet-DINO files pickle their argparse namespace: an explicit opt-in for files you trust
    python tools/model_converters/focalnet2mmfocal.py focalnet_large_fl4_o365.pth out.pth --trust-pickle
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))

from mmfocal.models.utils.focal_checkpoint import load_checkpoint_file  # noqa: E402
from mmfocal.models.utils.focalnet_checkpoint import (adapt_focalnet_state_dict, describe_adaptations,  # noqa: E402
                                                      final_norm_to_output, focalnet_backbone_state_dict)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='FocalNet checkpoint (official classification / mmdet / DINO, or timm)')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--arch', help='adapt to this FocalNet preset (with --focal-windows / --focal-levels)')
    parser.add_argument('--focal-windows', type=int, nargs='+', help='per stage (or one for all)')
    parser.add_argument('--focal-levels', type=int, nargs='+', help='per stage (or one for all)')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='load SRC with weights_only=False (runs pickled code: only for files you trust)')
    args = parser.parse_args()
    checkpoint = (torch.load(args.src, map_location='cpu', weights_only=False) if args.trust_pickle
                  else load_checkpoint_file(args.src))
    state, layout = focalnet_backbone_state_dict(checkpoint)
    head = [k for k in state if k.startswith('head.')]
    for key in head:
        del state[key]
    stages = 1 + max(int(k.split('.')[1]) for k in state if k.startswith('layers.'))
    notes = [n for n in [final_norm_to_output(state, {f'norm{stages - 1}.weight': None}, stages - 1)] if n]
    if args.arch or args.focal_windows or args.focal_levels:
        from mmfocal.models import FocalNet
        if not args.arch:
            parser.error('--focal-windows / --focal-levels need --arch (the preset to adapt to)')
        one = (lambda v: v[0] if v and len(v) == 1 else v)
        with torch.device('meta'):
            model = FocalNet(arch=args.arch, focal_windows=one(args.focal_windows),
                             focal_levels=one(args.focal_levels))
        kernels, gates = adapt_focalnet_state_dict(state, model.state_dict())
        notes += describe_adaptations(kernels, gates)
    torch.save({'state_dict': state, 'meta': {'source': os.path.basename(args.src), 'layout': layout,
                                              'converter': 'mmfocal focalnet2mmfocal'}}, args.dst)
    print(f'{args.src} ({layout} layout) -> {args.dst}: {len(state)} tensors'
          + (f', head dropped ({len(head)} tensors)' if head else '') + (f'; {"; ".join(notes)}' if notes else ''))


if __name__ == '__main__':
    main()
