"""Convert an official Focal Transformer ImageNet checkpoint for mmfocal (offline).

Keeps the backbone tensors under their official names, drops the classifier head and the
index buffers that mmfocal rebuilds, and writes ``{'state_dict': ..., 'meta': ...}``.
The backbone maps the official final ``norm.*`` to ``norm3.*`` when it loads the result.

Usage:
    python tools/model_converters/focal2mmfocal.py focal-tiny-is-224.pth focal_tiny_mm.pth
    # an official training checkpoint that pickles its yacs config needs an explicit opt-in:
    python tools/model_converters/focal2mmfocal.py ckpt_epoch_300.pth out.pth --trust-pickle
    # for the timm / ImageNet classifiers, keep the head:
    python tools/model_converters/focal2mmfocal.py ckpt_epoch_300.pth out.pth --trust-pickle --keep-head
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))

from mmfocal.models.utils.focal_checkpoint import (extract_backbone_state_dict,  # noqa: E402
                                                   load_checkpoint_file, official_to_mmfocal)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official checkpoint (bare state dict or {"model": ...})')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='load SRC with weights_only=False (runs pickled code: only for files you trust)')
    parser.add_argument('--keep-head', action='store_true',
                        help='keep the classifier head (for the timm / ImageNet classifiers, not for detection)')
    args = parser.parse_args()
    if args.trust_pickle:
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    else:
        checkpoint = load_checkpoint_file(args.src)
    state, notes = official_to_mmfocal(checkpoint)
    if args.keep_head:
        head = {k: v for k, v in extract_backbone_state_dict(checkpoint).items() if k.startswith('head.')}
        state.update(head)
        notes.append(f'kept {len(head)} head tensors')
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    torch.save({'state_dict': state, 'meta': {'source': os.path.basename(args.src), 'converter': 'focal2mmfocal'}},
               args.dst)
    print(f'wrote {len(state)} tensors to {args.dst}' + (f' ({"; ".join(notes)})' if notes else ''))


if __name__ == '__main__':
    main()
