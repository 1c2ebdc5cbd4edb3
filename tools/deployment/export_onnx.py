"""Export the backbone of a config (optionally with trained weights) to ONNX and check it with onnxruntime.

Usage:
    python tools/deployment/export_onnx.py CONFIG [CHECKPOINT] --shape H W [--dynamic [--check-shape H W ...]]
        [--out FILE] [--opset 17] [--whole]

By default the graph is for the ``--shape`` size only (onnxruntime refuses others). ``--dynamic`` gives the
image's height and width dynamic axes, for Focal Transformer (v1) backbones: the window padding, rolls and
pooled-level unfold are traced as functions of the input size, so one graph runs at any H, W >= 32. Focal-fast
refuses ``--dynamic``: its keys are a nearest-token search per map size whose ties follow ``torch.topk``'s CPU
order, which no ONNX operator reproduces (export it once per deployment size). ``--whole`` exports a segmentor end
to end (``mode='tensor'``: logits at 1/4 of the input, fixed size only: its pyramid pooling needs a known map);
detectors export their backbone (mmdet's post-processing belongs to mmdeploy). During an export the attention
takes its reference formulation (standard operators; same weights, same outputs as the fast path). With
onnxruntime installed the tool runs the file, at every ``--check-shape`` too, and prints the largest difference
to PyTorch's output at each size.
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
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic image height and width (Focal Transformer v1 backbones)')
    parser.add_argument('--check-shape', type=int, nargs=2, action='append', metavar=('H', 'W'),
                        help='with --dynamic, also compare with PyTorch at this size (repeatable; default: two '
                        'sizes near --shape, one of them odd)')
    args = parser.parse_args()
    if args.check_shape and not args.dynamic:
        parser.error('--check-shape needs --dynamic (a fixed-size graph runs at --shape only)')
    return args


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


def dynamic_axes(output_names: list) -> dict:
    """ONNX dynamic axes: the image's height and width, and each output map's."""
    axes = {'image': {2: 'height', 3: 'width'}}
    axes.update({name: {2: f'{name}_height', 3: f'{name}_width'} for name in output_names})
    return axes


def check_dynamic(model) -> None:
    """Raise ``ValueError`` when ``model`` holds attention whose keys a dynamic-size graph cannot compute."""
    from mmfocal.models.layers import FocalV2Attention
    fast = [m for m in model.modules() if isinstance(m, FocalV2Attention)]
    if fast:
        raise ValueError(
            'Focal-fast (FocalTransformerV2) cannot be exported with dynamic input sizes: each window attends '
            f'its {fast[0].topk} nearest tokens, and where distances tie the keys are the ones torch.topk picks '
            'on the CPU (the official choice), which no ONNX operator reproduces; a graph that searched for them '
            'itself would attend other keys at most sizes. Export one graph per deployment size (drop --dynamic).')


def export(model, shape: tuple, out: str, opset: int, output_names: list, dynamic: bool = False) -> None:
    """``torch.onnx.export`` with the TorchScript exporter (the dynamo one cannot trace mmcv's modules).

    Args:
        model: The module to export (its forward takes one image batch).
        shape: (H, W) of the traced input.
        out: The .onnx file to write.
        opset: ONNX opset.
        output_names: One name per output.
        dynamic: Dynamic height and width (:func:`check_dynamic` refuses models that cannot have them).
    """
    import torch
    if dynamic:
        check_dynamic(model)
    x = torch.rand(1, 3, *shape)
    kwargs = dict(opset_version=opset, input_names=['image'], output_names=output_names)
    if dynamic:
        kwargs['dynamic_axes'] = dynamic_axes(output_names)
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    with torch.no_grad():
        torch.onnx.export(model, (x, ), out, **kwargs)


def verify(model, out: str, shape: tuple) -> float:
    """Largest |onnxruntime - PyTorch| over all outputs on a random image of ``shape``.

    Raises:
        ValueError: If onnxruntime's outputs have other shapes than PyTorch's.
    """
    import numpy as np
    import onnxruntime
    import torch
    x = torch.rand(1, 3, *shape)
    with torch.no_grad():
        ref = model(x)
    ref = ref if isinstance(ref, (tuple, list)) else [ref]
    session = onnxruntime.InferenceSession(out, providers=['CPUExecutionProvider'])
    got = session.run(None, {'image': x.numpy()})
    shapes = [tuple(g.shape) for g in got], [tuple(r.shape) for r in ref]
    if shapes[0] != shapes[1]:
        raise ValueError(f'at {shape[0]}x{shape[1]} onnxruntime gives maps {shapes[0]}, PyTorch {shapes[1]}')
    return max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))


def default_check_shapes(shape: tuple) -> list:
    """Two sizes besides ``shape`` to check a dynamic graph at: one larger, one odd-sized and not a window multiple."""
    h, w = shape
    return [(h + 64, w + 32), (max(33, h - h // 8) | 1, (w + w // 8) | 1)]


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
    if args.whole and args.dynamic:
        sys.exit('error: --whole exports at one size (the decode head\'s pyramid pooling needs a known map): drop '
                 '--dynamic, or export the backbone (drop --whole) with dynamic sizes')
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
        export(target, tuple(args.shape), out, args.opset, names, dynamic=args.dynamic)
    except ValueError as exc:  # a model that cannot have dynamic sizes says why
        sys.exit(f'error: {exc}')
    except Exception as exc:  # noqa: BLE001 - one known limit gets its fix, anything else is re-raised
        if 'adaptive_avg_pool2d' not in str(exc):
            raise
        scales = tuple(cfg.model.get('decode_head', {}).get('pool_scales', (1, 2, 3, 6)))
        step = 32 * math.lcm(*scales)
        sys.exit(f'error: the decode head\'s pyramid pooling (scales {scales}) exports to ONNX only when the '
                 f'stage-4 map (H/32 x W/32) is divisible by every scale: choose --shape as multiples of '
                 f'{step} (e.g. {2 * step} {2 * step})')
    size = 'dynamic H x W, traced' if args.dynamic else 'fixed size'
    print(f'exported {"the whole model" if args.whole else "the backbone"} ({size} at 1x3x{args.shape[0]}x'
          f'{args.shape[1]}, opset {args.opset}) to {out}')
    shapes = [tuple(args.shape)]
    if args.dynamic:
        shapes += [tuple(s) for s in args.check_shape] if args.check_shape else default_check_shapes(args.shape)
    for shape in shapes:
        try:
            diff = verify(target, out, shape)
        except ImportError:
            print('onnxruntime not installed: not verified (pip install onnxruntime)')
            return
        except ValueError as exc:
            sys.exit(f'error: {exc}')
        print(f'onnxruntime vs PyTorch at {shape[0]}x{shape[1]}: max |diff| {diff:.2e}')


if __name__ == '__main__':
    main()
