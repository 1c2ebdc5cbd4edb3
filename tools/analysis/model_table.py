"""Table of every config: our params/FLOPs against the paper's.

Usage:
    python tools/analysis/model_table.py            # params and FLOPs (about a minute per config on 2 cores)
    python tools/analysis/model_table.py --no-flops # params only (seconds)
    python tools/analysis/model_table.py --seg-shape 512 2048
    python tools/analysis/model_table.py --readme   # the README model-zoo table, from model-index.yml
    python tools/analysis/model_table.py --method-readmes   # (re)write configs/<method>/README.md from the metafiles

Detection FLOPs are counted at 1280x800. UPerNet FLOPs are counted at --seg-shape, by default crop x 4crop
(2048x512 for 512 crops, 2560x640 for 640: the input sizes Swin's segmentation tables use, which the published
UPerNet numbers follow).
"""

import argparse
import os
import os.path as osp
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--no-flops', action='store_true')
    parser.add_argument('--seg-shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='UPerNet input size (default: crop height x 4 crop widths)')
    parser.add_argument('--filter', default='', help='only configs whose path contains this')
    parser.add_argument('--readme', action='store_true',
                        help='print the README model-zoo table (paper numbers from model-index.yml) and exit')
    parser.add_argument('--method-readmes', action='store_true',
                        help='write configs/<method>/README.md from each metafile and exit')
    args = parser.parse_args()
    from mmfocal.apis.model_index import load_model_index, method_readmes, model_key, readme_table
    entries = load_model_index()
    if args.readme:
        print(readme_table(entries))
        return
    if args.method_readmes:
        for path, text in method_readmes(REPO).items():
            with open(osp.join(REPO, path), 'w') as f:
                f.write(text)
            print(path)
        return
    warnings.filterwarnings('ignore')
    from mmengine.config import Config

    from mmfocal.utils.complexity import complexity
    seen = set()
    print(f'| {"config":34s} | params (M) | paper | diff | FLOPs (G) | paper | diff | input |')
    print(f'|{"-" * 36}|-----------:|------:|-----:|----------:|------:|-----:|-------|')
    for entry in entries:
        rel = entry.config
        key = model_key(rel)
        if args.filter not in rel or key in seen or not (entry.params_m or osp.basename(rel).startswith('focal_')):
            continue  # 1x and 3x build the same model; references without published counts are skipped
        seen.add(key)
        cfg = Config.fromfile(osp.join(REPO, rel))
        shape = None
        if cfg.get('default_scope') == 'mmseg':
            crop = cfg.get('crop_size', (512, 512))
            shape = tuple(args.seg_shape) if args.seg_shape else (crop[0], 4 * crop[1])
        res = complexity(cfg, shape, flops=not args.no_flops)
        paper_params, paper_flops = entry.params_m, entry.flops_g
        params = res['params'] / 1e6
        p_diff = f'{100 * (params / paper_params - 1):+.1f}%' if paper_params else '-'
        if 'flops' in res:
            flops = res['flops'] / 1e9
            f_diff = f'{100 * (flops / paper_flops - 1):+.1f}%' if paper_flops else '-'
            flops_s = f'{flops:.0f}'
        else:
            flops_s, f_diff = '-', '-'
        h, w = res['shape']
        schedules = sum(model_key(e.config) == key for e in entries)
        label = key.split('_160k')[0] if 'upernet' in key else key + (' (1x/3x)' if schedules > 1 else '')
        print(f'| {label:34s} | {params:10.2f} | '
              f'{paper_params or "-":>5} | {p_diff:>4} | {flops_s:>9} | {paper_flops or "-":>5} | {f_diff:>4} | '
              f'{w}x{h} |', flush=True)


if __name__ == '__main__':
    main()
