"""Speed and memory of the Focal-T backbones (v1 and Focal-fast v2) against their reference attention, the
official v1 and v2 code and mmdet's Swin-T, and of FocalNet-T / -B (srf) against timm's own FocalNet-T, in one run
with the same thread count.

Usage:
    python tools/analysis/benchmark.py [--official PATH/classification/focal_transformer.py]
        [--official-v2 PATH/classification/focal_transformer_v2.py] [--threads N]
        [--out work_dirs/benchmark] [--repeat 4] [--quick]

Measured per (model, input): backbone forward (eval, no grad) and forward+backward (train mode) wall time over
``--repeat`` rounds after one warm-up; each round times every model of the input once, back to back, in one
process. Seconds are the median over rounds; a ratio between two models is the median of their per-round ratios
(a shared machine's slow spell hits both members of a round). Peak memory of a forward+backward: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the peak of live tensor bytes from the profiler's allocation events
(and, for reference, the growth of the process's peak RSS), each measurement in a fresh process. ``--profile``
adds each model's top operators (self CPU time of one forward+backward). Each model's multiply-adds per image
(GEMMs, convolutions, attention products of a forward; :func:`multiply_adds`) come with their ratios, so a time
ratio can be read against the work ratio. Inputs: 224x224 batch 8, 512x512 batch 2, 800x1333 batch 1. The
official code only runs at its build size (224). All v1 models share the same random weights, and so do all v2
models; the script checks that their outputs agree before timing. Writes ``benchmark.json`` and
``benchmark.png``.
"""

import argparse
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict, List

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

SIZES = [(8, 224, 224), (2, 512, 512), (1, 800, 1333)]
MODELS = ['focal_fast', 'focal_reference', 'official_v1', 'focal_v2_fast', 'focal_v2_reference', 'official_v2',
          'focalnet_t', 'focalnet_b', 'timm_focalnet_t', 'swin_t']
OFFICIAL = {'official_v1': 'official', 'official_v2': 'official_v2'}  # which --official* file each one needs


def build_v2(name: str, official_v2: str = None, hw=(224, 224)):
    """Focal-fast-T (fast or reference attention) or the official v2 model, with the same seeded weights."""
    import importlib.util

    import torch

    from mmfocal.models import FocalTransformerV2
    torch.manual_seed(0)
    ours = FocalTransformerV2(arch='tiny', drop_path_rate=0.,
                              attn_impl='reference' if name == 'focal_v2_reference' else 'fast')
    ours.init_weights()
    if name != 'official_v2':
        return ours
    tool = osp.join(osp.dirname(osp.abspath(__file__)), '..', 'dev', 'make_parity_fixture_v2.py')
    spec = importlib.util.spec_from_file_location('make_parity_fixture_v2', tool)  # its official-file loader
    fixture_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture_tool)
    module = fixture_tool.load_official(official_v2)
    model = module.FocalTransformer(img_size=hw, **fixture_tool.COMMON, **fixture_tool.ARCHS['tiny'])
    state = {k: v for k, v in ours.state_dict().items() if not k.startswith('norm')}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(('norm.', 'head.')) or 'topk_cloest' in k or 'window_coords' in k
                                  for k in missing), (missing, unexpected)
    model.head = torch.nn.Identity()
    return model


def build_focalnet(name: str):
    """FocalNet-T / -B (srf) as our backbone (its four outputs), or timm's FocalNet-T as a feature extractor of the
    same four stages (timm's own model: NCHW throughout, 1x1 convolutions, no output norms)."""
    import torch
    torch.manual_seed(0)
    if name == 'timm_focalnet_t':
        import timm
        return timm.create_model('focalnet_tiny_srf', features_only=True, drop_path_rate=0.)
    from mmfocal.models import FocalNet
    model = FocalNet(arch='tiny_srf' if name == 'focalnet_t' else 'base_srf', drop_path_rate=0.)
    model.init_weights()
    return model


def build(name: str, official: str = None, hw=(224, 224), official_v2: str = None):
    """Build one backbone by name (Focal-T models with the same seeded weights)."""
    import torch
    if 'focalnet' in name:
        return build_focalnet(name)
    if 'v2' in name:
        return build_v2(name, official_v2, hw)
    if name == 'swin_t':
        from mmdet.models.backbones import SwinTransformer
        torch.manual_seed(0)
        return SwinTransformer(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7,
                               out_indices=(0, 1, 2, 3))
    from mmfocal.models import FocalTransformer
    torch.manual_seed(0)
    ours = FocalTransformer(arch='tiny', drop_path_rate=0., attn_impl='reference' if name == 'focal_reference'
                            else 'fast')
    ours.init_weights()
    if name != 'official_v1':
        return ours
    import importlib.util
    spec = importlib.util.spec_from_file_location('official_focal', official)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.FocalTransformer(img_size=hw, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                                    focal_levels=[2] * 4, focal_windows=[7, 5, 3, 1], expand_sizes=[3] * 4,
                                    focal_pool='fc', drop_path_rate=0.)
    state = {k: v for k, v in ours.state_dict().items() if not k.startswith('norm')}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(('norm.', 'head.')) or 'relative_position_index' in k
                                  or 'valid_ind' in k for k in missing), (missing, unexpected)
    model.head = torch.nn.Identity()
    return model


def measure(names: List[str], batch: int, h: int, w: int, repeat: int, official: str,
            threads: int, official_v2: str = None, profile: bool = False) -> Dict[str, Dict[str, float]]:
    """Time forward and forward+backward of several models in this process, alternating between them.

    Each round times every model once, so a slow spell of a shared machine hits all of them rather than
    whichever ran then: per model the median seconds and every round's (``rounds``), from which ratios are
    per-round. On CUDA also the peak memory; with ``profile`` the top operators of a forward+backward.
    """
    import torch
    torch.set_num_threads(threads)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    models = {name: build(name, official, (h, w), official_v2).to(device) for name in names}
    x = torch.rand(batch, 3, h, w, device=device)

    def sync() -> None:
        if device == 'cuda':
            torch.cuda.synchronize()

    def step(model: 'torch.nn.Module', train: bool) -> None:
        model.train(train)
        if train:
            out = model(x)
            out = out if isinstance(out, (tuple, list)) else [out]
            sum(o.float().mean() for o in out).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                model(x)
        sync()

    results = {name: {} for name in names}
    for mode, train in (('forward', False), ('forward_backward', True)):
        times = {name: [] for name in names}
        for name, model in models.items():
            step(model, train)  # warm-up (caches, allocator, lazy index tables)
        for _ in range(repeat):
            for name, model in models.items():
                start = time.perf_counter()
                step(model, train)
                times[name].append(time.perf_counter() - start)
        for name in names:
            results[name][mode] = statistics.median(times[name])
            results[name].setdefault('rounds', {})[mode] = times[name]
    for name, model in models.items():
        if device == 'cuda':
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            step(model, True)
            results[name]['peak_mem_mb'] = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
        else:
            results[name]['peak_mem_mb'] = None  # filled by the memory run in a fresh process
        if profile:
            results[name]['top_ops'] = top_ops(lambda: step(model, True))
        results[name]['gmacs'] = multiply_adds(model, x) / 1e9
    return results


def multiply_adds(model: 'torch.nn.Module', x: 'torch.Tensor') -> float:
    """Multiply-adds per image of one training-mode forward: GEMMs, convolutions and attention products.

    Counted by ``torch.utils.flop_counter`` over what the model runs (elementwise work is not counted). The
    focal attention runs its explicit-logits form (``cpu_flash=False``: the same products as the flash
    kernel, as GEMMs the counter sees); its in-place ``baddbmm_`` is counted like ``baddbmm``.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mmfocal.ops import attention_settings

    def baddbmm_(_, a: 'torch.Size', b: 'torch.Size', *args, **kwargs) -> int:
        return 2 * a[0] * a[1] * a[2] * b[2]

    model.train()
    with attention_settings(cpu_flash=False), \
            FlopCounterMode(display=False, custom_mapping={torch.ops.aten.baddbmm_: baddbmm_}) as counter:
        model(x)
    return counter.get_total_flops() / 2 / x.shape[0]


def top_ops(fn, n: int = 6) -> List[dict]:
    """The ``n`` operators with the most self CPU time in one call of ``fn``, with their share of the total."""
    import torch
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    ops = [e for e in prof.key_averages() if not e.key.startswith(('autograd::', 'Optimizer'))]
    total = sum(e.self_cpu_time_total for e in ops) or 1
    ops.sort(key=lambda e: -e.self_cpu_time_total)
    return [dict(op=e.key, ms=round(e.self_cpu_time_total / 1e3, 1), share=round(e.self_cpu_time_total / total, 3),
                 calls=e.count) for e in ops[:n]]


def write_rows(path: str, rows: list, threads: int, **fields) -> None:
    """Write a benchmark's rows as JSON with the date, torch version, thread count and machine."""
    import torch
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(date=time.strftime('%Y-%m-%d'), torch=torch.__version__, threads=threads,
                       machine=platform.processor() or platform.machine(), **fields, rows=rows), f, indent=1)


def pair_ratio(runs: dict, slow: str, fast: str, mode: str) -> float:
    """Median over rounds of ``slow``'s time / ``fast``'s time in the same round."""
    a, b = runs[slow]['rounds'][mode], runs[fast]['rounds'][mode]
    return statistics.median(x / y for x, y in zip(a, b))


def peak_memory_step(name: str, batch: int, h: int, w: int, official: str, threads: int,
                     official_v2: str = None) -> Dict[str, float]:
    """Peak memory (MiB) of one forward+backward on CPU, measured in this (fresh) process.

    ``peak_mem_mb``: the highest total of live tensor bytes, from the profiler's allocation events (the
    CPU analogue of ``torch.cuda.max_memory_allocated``; exact and repeatable). ``peak_rss_mb``: the
    growth of the process's peak RSS, which also counts what malloc keeps and varies between runs.
    """
    import resource

    import torch
    torch.set_num_threads(threads)
    model = build(name, official, (h, w), official_v2)
    x = torch.rand(batch, 3, h, w)
    model.train()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        out = model(x)
        out = out if isinstance(out, (tuple, list)) else [out]
        sum(o.mean() for o in out).backward()
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    def start(e) -> int:  # torch 2.1's events have start_us() only
        return e.start_ns() if hasattr(e, 'start_ns') else 1000 * e.start_us()

    events = sorted((start(e), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == '[memory]' and e.device_type() == torch.autograd.DeviceType.CPU)
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return dict(peak_mem_mb=peak / 2 ** 20, peak_rss_mb=rss)


def _last_block_output(model, x):
    """Output of the last block of the last stage (official and ours alike: before any final norm)."""
    feats = []
    hook = model.layers[3].blocks[-1].register_forward_hook(lambda m, i, o: feats.append(o))
    model(x)
    hook.remove()
    return feats[0]


def check_outputs_agree(official: str, official_v2: str = None) -> Dict[str, float]:
    """Max |diff| of the features of the fast and reference paths (and the official code, stage 4) at 224."""
    import torch
    x = torch.rand(2, 3, 224, 224)
    diffs = {}
    with torch.no_grad():
        for version, fast_name, ref_name, off_name, path in (
                ('', 'focal_fast', 'focal_reference', 'official_v1', official),
                ('v2_', 'focal_v2_fast', 'focal_v2_reference', 'official_v2', official_v2)):
            fast = build(fast_name).eval()(x)
            ref = build(ref_name).eval()(x)
            diffs[f'{version}fast_vs_reference'] = max((a - b).abs().max().item() for a, b in zip(fast, ref))
            if path:
                theirs = _last_block_output(build(off_name, official, official_v2=official_v2).eval(), x)
                mine = _last_block_output(build(fast_name).eval(), x)
                diffs[f'{version}fast_vs_official_stage4'] = (theirs - mine).abs().max().item()
    return diffs


def plot(results: dict, path: str) -> None:
    """Bar charts of forward, forward+backward and memory per input size."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    metrics = [('forward', 'forward (s)'), ('forward_backward', 'forward+backward (s)'),
               ('peak_mem_mb', 'peak memory (MiB)')]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    sizes = [k for k in results['runs']]
    for ax, (key, label) in zip(axes, metrics):
        for i, model in enumerate(MODELS):
            vals = [results['runs'][s].get(model, {}).get(key) for s in sizes]
            width = 0.8 / len(MODELS)
            xs = [j + i * width for j in range(len(sizes))]
            ax.bar([x for x, v in zip(xs, vals) if v is not None], [v for v in vals if v is not None], width,
                   label=model)
        ax.set_xticks([j + 0.4 - 0.4 / len(MODELS) for j in range(len(sizes))])
        ax.set_xticklabels(sizes)
        ax.set_title(label)
    axes[0].legend()
    fig.suptitle(f'Focal-T backbones (v1, Focal-fast v2) vs Swin-T — {results["machine"]}', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--official', help='path to the official classification/focal_transformer.py')
    parser.add_argument('--official-v2', help='path to the official classification/focal_transformer_v2.py')
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--repeat', type=int, default=4)
    parser.add_argument('--out', default='work_dirs/benchmark')
    parser.add_argument('--quick', action='store_true', help='160x160 batch 1 only (smoke test)')
    parser.add_argument('--models', default=','.join(MODELS),
                        help=f'comma-separated subset of {",".join(MODELS)} (default: all)')
    parser.add_argument('--profile', action='store_true', help='top operators of each forward+backward')
    parser.add_argument('--_worker', nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import warnings
    warnings.filterwarnings('ignore')
    if args._worker:
        kind, name, b, h, w = args._worker
        if kind == 'mem':
            print(json.dumps(peak_memory_step(name, int(b), int(h), int(w), args.official, args.threads,
                                              args.official_v2)))
        else:
            print(json.dumps(measure(name.split(','), int(b), int(h), int(w), args.repeat, args.official,
                                     args.threads, args.official_v2, args.profile)))
        return

    import torch
    unknown = set(args.models.split(',')) - set(MODELS)
    if unknown or 'swin_t' not in args.models.split(','):
        parser.error(f'--models: unknown {sorted(unknown)}' if unknown else '--models: swin_t is the baseline of '
                     'every ratio; keep it')
    sizes = [(1, 160, 160)] if args.quick else SIZES
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else
              f'CPU {platform.processor() or platform.machine()}')
    results = dict(machine=f'{device}, {args.threads} threads, torch {torch.__version__}',
                   agreement=check_outputs_agree(args.official, args.official_v2), runs={})
    print(f'machine: {results["machine"]}\noutputs agree: {results["agreement"]}')
    for b, h, w in sizes:
        key = f'{h}x{w} b{b}'
        results['runs'][key] = {}
        # the official models only run at their build size 224
        names = [n for n in MODELS if n in args.models.split(',')
                 and (n not in OFFICIAL or (getattr(args, OFFICIAL[n]) and (h, w) == (224, 224)))]
        cmd = [sys.executable, __file__, '--threads', str(args.threads), '--repeat', str(args.repeat)]
        if args.official:
            cmd += ['--official', args.official]
        if args.official_v2:
            cmd += ['--official-v2', args.official_v2]
        if args.profile:
            cmd += ['--profile']

        def worker(kind: str, what: str) -> dict:
            out = subprocess.run(cmd + ['--_worker', kind, what, str(b), str(h), str(w)], capture_output=True,
                                 text=True, check=True).stdout
            return json.loads(out.strip().splitlines()[-1])

        timed = worker('time', ','.join(names))
        for name in names:
            res = timed[name]
            if res['peak_mem_mb'] is None:
                res.update(worker('mem', name))
            results['runs'][key][name] = res
            print(f'{key:14s} {name:16s} fwd {res["forward"]:7.3f} s  fwd+bwd {res["forward_backward"]:7.3f} s  '
                  f'peak {res["peak_mem_mb"]:8.0f} MiB  {res["gmacs"]:6.2f} GMACs/image', flush=True)
            for op in res.get('top_ops', []):
                print(f'{"":31s} {op["op"]:48s} {op["ms"]:9.1f} ms  {100 * op["share"]:4.1f}%')
        runs = results['runs'][key]

        def ratio(slow: str, fast: str) -> dict:
            r = {mode: pair_ratio(runs, slow, fast, mode) for mode in ('forward', 'forward_backward')}
            r['peak_mem_mb'] = runs[slow]['peak_mem_mb'] / runs[fast]['peak_mem_mb']
            r['gmacs'] = runs[slow]['gmacs'] / runs[fast]['gmacs']
            return r

        ratios = {f'{m}/swin_t': ratio(m, 'swin_t') for m in runs if m != 'swin_t'}
        pairs = [('official_v1', 'focal_fast'), ('official_v2', 'focal_v2_fast'), ('focal_fast', 'focal_v2_fast'),
                 ('focal_v2_fast', 'focal_fast'), ('focalnet_t', 'timm_focalnet_t'), ('focalnet_t', 'focal_fast'),
                 ('focalnet_t', 'focal_v2_fast')]
        for slow, fast in pairs:
            if slow in runs and fast in runs:
                ratios[f'{slow}/{fast}'] = ratio(slow, fast)
        results['runs'][key]['ratios'] = ratios
        for name, r in ratios.items():
            print(f'{key:14s} {name:24s} fwd {r["forward"]:.2f}x  fwd+bwd {r["forward_backward"]:.2f}x  '
                  f'mem {r["peak_mem_mb"]:.2f}x  MACs {r["gmacs"]:.2f}x')
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'benchmark.json'), 'w') as f:
        json.dump(results, f, indent=2)
    for runs in results['runs'].values():
        runs.pop('ratios', None)
    plot(results, osp.join(args.out, 'benchmark.png'))
    print(f'wrote {args.out}/benchmark.json and benchmark.png')


if __name__ == '__main__':
    main()
