"""Export the backbone of a config (optionally with trained weights) to ONNX and check it with onnxruntime.

Usage:
    python tools/deployment/export_onnx.py CONFIG [CHECKPOINT] --shape H W [--out FILE] [--opset 17] [--whole]

The export has a fixed input size: the attention's window padding and gather pattern are derived from the map
size in Python, so the graph holds them for the size it was traced at (export once per deployment size, as for
mmdeploy's static configs). ``--whole`` exports a segmentor end to end (``mode='tensor'``: logits at 1/4 of the
input); detectors export their backbone (mmdet's post-processing belongs to mmdeploy). During an export the
attention takes its reference formulation (standard operators; same weights, same outputs as the fast path).
With onnxruntime installed the tool runs the file and prints the largest difference to PyTorch's output.
"""

import argparse
import inspect
import math
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args() -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='trained detector/segmentor checkpoint (optional)')
    parser.add_argument('--shape', type=int, nargs=2, required=True, metavar=('H', 'W'))
    parser.add_argument('--out', help='output file (default: work_dirs/onnx/<config name>.onnx)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--whole', action='store_true', help='export a segmentor end to end (tensor mode)')
    return parser.parse_args()


def _tensor_mode(model):
    """The model's ``forward(x, mode='tensor')`` as a module whose ``forward`` takes the image only."""
    import torch

    class TensorMode(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x, mode='tensor')

    return TensorMode().eval()


def export(model, shape: tuple, out: str, opset: int, output_names: list) -> None:
    """``torch.onnx.export`` with the TorchScript exporter (the dynamo one cannot trace mmcv's modules)."""
    import torch
    x = torch.rand(1, 3, *shape)
    kwargs = dict(opset_version=opset, input_names=['image'], output_names=output_names)
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    with torch.no_grad():
        torch.onnx.export(model, (x, ), out, **kwargs)


def verify(model, out: str, shape: tuple) -> float:
    """Largest |onnxruntime - PyTorch| over all outputs on a random image."""
    import numpy as np
    import onnxruntime
    import torch
    x = torch.rand(1, 3, *shape)
    with torch.no_grad():
        ref = model(x)
    ref = ref if isinstance(ref, (tuple, list)) else [ref]
    session = onnxruntime.InferenceSession(out, providers=['CPUExecutionProvider'])
    got = session.run(None, {'image': x.numpy()})
    return max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))


def main() -> None:
    """Entry point."""
    args = parse_args()
    import os
    import warnings

    from mmengine.config import Config

    import mmfocal  # noqa: F401
    from mmfocal.utils.config import build_model, task_of
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if path and not osp.isfile(path):
            sys.exit(f'error: {what} not found: {path}')
    cfg = Config.fromfile(args.config)
    try:
        scope = task_of(cfg)
    except (ValueError, ImportError) as exc:
        sys.exit(f'error: {exc}')
    if args.whole and scope != 'mmseg':
        sys.exit('error: --whole exports segmentors; for a detector export its backbone (drop --whole) and use '
                 "mmdeploy for the detector's post-processing")
    warnings.filterwarnings('ignore')
    model = build_model(cfg).eval()
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    target = _tensor_mode(model) if args.whole else model.backbone
    n_out = 1 if args.whole else len(getattr(model.backbone, 'out_indices', (0, 1, 2, 3)))
    names = ['seg_logits'] if args.whole else [f'feat{i}' for i in range(n_out)]
    out = args.out or osp.join('work_dirs', 'onnx', osp.splitext(osp.basename(args.config))[0] + '.onnx')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    try:
        export(target, tuple(args.shape), out, args.opset, names)
    except Exception as exc:  # noqa: BLE001 - one known limit gets its fix, anything else is re-raised
        if 'adaptive_avg_pool2d' not in str(exc):
            raise
        scales = tuple(cfg.model.get('decode_head', {}).get('pool_scales', (1, 2, 3, 6)))
        step = 32 * math.lcm(*scales)
        sys.exit(f'error: the decode head\'s pyramid pooling (scales {scales}) exports to ONNX only when the '
                 f'stage-4 map (H/32 x W/32) is divisible by every scale: choose --shape as multiples of '
                 f'{step} (e.g. {2 * step} {2 * step})')
    print(f'exported {"the whole model" if args.whole else "the backbone"} at 1x3x{args.shape[0]}x{args.shape[1]} '
          f'(opset {args.opset}) to {out}')
    try:
        diff = verify(target, out, tuple(args.shape))
    except ImportError:
        print('onnxruntime not installed: not verified (pip install onnxruntime)')
        return
    print(f'onnxruntime vs PyTorch: max |diff| {diff:.2e}')


if __name__ == '__main__':
    main()
