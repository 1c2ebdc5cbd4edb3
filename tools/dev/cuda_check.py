"""The prepared CUDA check of the Focal-T, Focal-fast-T and FocalNet backbones: correctness, speed and memory on a GPU.

Usage:
    python tools/dev/cuda_check.py [--official PATH/classification/focal_transformer.py] [--out DIR]
    python tools/dev/cuda_check.py --device cpu --quick      # smoke test, run by the test suite

Made for a GPU machine that has torch (CUDA), torchvision, timm, numpy and opencv but no OpenMMLab package and no
network: mmengine and mmcv are only needed as pure Python (no compiled ops), so when they are not installed the
script takes them from ``.cuda_check_deps/`` (``bash tools/dev/fetch_cuda_check_deps.sh`` fills it on a machine
with network; carry that folder along). Anything else missing ends the script with one line saying what.

What it measures (one JSON + a short text summary in ``--out``):

1. correctness, for both families: fast vs reference attention at 224x224 and 800x1333 in fp32 (TF32 off), eval
   outputs and, in training mode, outputs and every parameter gradient (max |diff| relative to the largest value,
   <= 1e-4); the official v1 code at 224 when ``--official`` is given; bf16 / fp16 autocast outputs against fp32
   (relative L2 error <= 3e-2 / 1e-2); ``with_cp=True`` gradients against the same model without (<= 1e-5); a
   ``torch.compile`` training step (inductor; ``aot_eager`` in the CPU smoke test) against eager, outputs and
   gradients (<= 1e-4); FocalNet-T's bf16 / fp16 autocast outputs against fp32;
2. speed: forward at 224x224 x64 and 800x1333 x2 and a training step (forward + backward) at 800x1333 x2 for
   Focal-T fast, Focal-T reference, Focal-fast-T, FocalNet-T, FocalNet-B (srf) and torchvision's Swin-T, timed
   with CUDA events (warm-up, median of N);
3. memory: ``torch.cuda.max_memory_allocated`` of that training step, Focal-T fast vs Swin-T;
4. the ten most expensive CUDA kernels of the fast training step (so a slow path says where its time goes).

``--quick`` uses tiny sizes and one repetition (a few minutes on 2 CPU cores, most of it compiling).
"""

import argparse
import importlib
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEPS = osp.join(REPO, '.cuda_check_deps')

# (batch, H, W) per measurement; quick mode replaces them
FULL = dict(correct=[(2, 224, 224), (1, 800, 1333)], fwd=[(64, 224, 224), (2, 800, 1333)], train=(2, 800, 1333),
            repeat=10, warmup=3)
QUICK = dict(correct=[(1, 64, 96)], fwd=[(1, 64, 64), (1, 64, 96)], train=(1, 64, 96), repeat=1, warmup=1)
TOL = dict(fp32=1e-4, bf16=3e-2, fp16=1e-2, with_cp=1e-5)
TARGETS = dict(forward=1.3, train_step=1.4)  # Focal-T fast / Swin-T at 800x1333 (the ratios met on CPU)


def fail(message: str) -> None:
    """End with one line saying what is missing or wrong."""
    sys.exit(f'cuda_check: {message}')


def import_backbone():
    """FocalTransformer and FocalTransformerV2, taking mmengine / mmcv (pure Python) from .cuda_check_deps when they
    are not installed."""
    sys.path.insert(0, REPO)
    for attempt in range(2):
        try:
            importlib.import_module('mmengine.model')
            importlib.import_module('mmcv.cnn')
            break
        except ImportError as exc:
            if attempt == 0 and osp.isdir(DEPS):
                sys.path.insert(1, DEPS)
                for name in [m for m in sys.modules if m.split('.')[0] in ('mmengine', 'mmcv')]:
                    del sys.modules[name]
                continue
            fail(f'mmengine/mmcv not importable ({exc}); run `bash tools/dev/fetch_cuda_check_deps.sh` where there is '
                 'network and carry .cuda_check_deps/ along')
    from mmfocal.models import FocalTransformer, FocalTransformerV2
    return FocalTransformer, FocalTransformerV2


def rel_max(a, b) -> float:
    """max |a - b| relative to max |b|."""
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12))


def rel_l2(a, b) -> float:
    """||a - b|| / ||b||."""
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12))


def grad_error(grads: Dict[str, 'object'], ref: Dict[str, 'object']) -> float:
    """Worst per-parameter max |diff| relative to that parameter's largest reference gradient, floored at 1e-6 of
    the largest gradient of the model: tables whose true gradient is ~0 (1e-12, e.g. pooled-level biases on a map
    of one window) would otherwise compare rounding noise with rounding noise."""
    floor = 1e-6 * max(float(g.float().abs().max()) for g in ref.values())
    return max(float((grads[n].float() - g.float()).abs().max()) / max(float(g.float().abs().max()), floor)
               for n, g in ref.items())


class Check:
    """Collects correctness results; each has a value, a tolerance and whether it passed."""

    def __init__(self) -> None:
        self.results: Dict[str, dict] = {}

    def add(self, name: str, value: float, tol: float) -> None:
        self.results[name] = dict(value=value, tol=tol, ok=bool(value <= tol))

    @property
    def ok(self) -> bool:
        return all(r['ok'] for r in self.results.values())


def focal(Focal, impl: str, device: str, **kwargs):
    """Focal-T with seeded weights (the same for every ``impl``) and no drop path."""
    import torch
    torch.manual_seed(0)
    model = Focal(arch='tiny', drop_path_rate=0., attn_impl=impl, **kwargs)
    model.init_weights()
    return model.to(device)


def focalnet(arch: str, device: str):
    """FocalNet of ``arch`` with seeded weights and no drop path."""
    import torch

    from mmfocal.models import FocalNet
    torch.manual_seed(0)
    model = FocalNet(arch=arch, drop_path_rate=0.)
    model.init_weights()
    return model.to(device)


def check_focalnet(device: str, size: tuple, check: Check) -> None:
    """FocalNet-T under bf16 / fp16 autocast against fp32 (it has one path: no fast / reference pair)."""
    import torch
    model = focalnet('tiny_srf', device).eval()
    b, h, w = size
    torch.manual_seed(1)
    x = torch.rand(b, 3, h, w, device=device)
    with torch.no_grad():
        ref32 = model(x)
        for dtype, key in ((torch.bfloat16, 'bf16'), (torch.float16, 'fp16')):
            try:
                with torch.autocast(device, dtype=dtype):
                    low = model(x)
            except RuntimeError as exc:
                check.results[f'FocalNet-T {key} autocast {h}x{w}'] = dict(value=None, tol=TOL[key], ok=True,
                                                                        skipped=str(exc)[:200])
                continue
            check.add(f'FocalNet-T {key} autocast outputs vs fp32 {h}x{w} (relative L2)',
                      max(rel_l2(a, r) for a, r in zip(low, ref32)), TOL[key])


def train_grads(model, x) -> Tuple[list, Dict[str, 'object']]:
    """Outputs and parameter gradients of one training forward/backward.

    The loss projects each output on fixed random weights: the mean square of a LayerNorm output hardly depends
    on its input, so its gradients would be rounding noise.
    """
    import torch
    model.train()
    model.zero_grad(set_to_none=True)
    outs = model(x)
    gen = torch.Generator(device='cpu').manual_seed(2)
    sum((o.float() * torch.randn(o.shape, generator=gen).to(o.device)).mean() for o in outs).backward()
    return [o.detach() for o in outs], {n: p.grad.detach().clone() for n, p in model.named_parameters()
                                        if p.grad is not None}


def check_correctness(Focal, device: str, sizes: List[tuple], official: Optional[str], check: Check,
                      label: str = '') -> None:
    """Fast vs reference (fp32), official v1, autocast, with_cp; check names start with ``label``."""
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    fast, ref = focal(Focal, 'fast', device), focal(Focal, 'reference', device)
    for b, h, w in sizes:
        torch.manual_seed(1)
        x = torch.rand(b, 3, h, w, device=device)
        with torch.no_grad():
            fo, ro = fast.eval()(x), ref.eval()(x)
        check.add(f'{label}fp32 eval outputs fast vs reference {h}x{w}', max(rel_max(a, r) for a, r in zip(fo, ro)),
                  TOL['fp32'])
        (fo, fg), (ro, rg) = train_grads(fast, x), train_grads(ref, x)
        check.add(f'{label}fp32 train outputs fast vs reference {h}x{w}', max(rel_max(a, r) for a, r in zip(fo, ro)),
                  TOL['fp32'])
        assert fg.keys() == rg.keys() and len(fg) > 0
        check.add(f'{label}fp32 gradients fast vs reference {h}x{w} (all {len(fg)} parameters)', grad_error(fg, rg),
                  TOL['fp32'])
        with torch.no_grad():
            for dtype, key in ((torch.bfloat16, 'bf16'), (torch.float16, 'fp16')):
                try:
                    with torch.autocast(device, dtype=dtype):
                        low = fast.eval()(x)
                except RuntimeError as exc:  # e.g. fp16 autocast on an old CPU build
                    check.results[f'{label}{key} autocast {h}x{w}'] = dict(value=None, tol=TOL[key], ok=True,
                                                                   skipped=str(exc)[:200])
                    continue
                ref32 = fast(x)
                check.add(f'{label}{key} autocast outputs vs fp32 {h}x{w} (relative L2)',
                          max(rel_l2(a, r) for a, r in zip(low, ref32)), TOL[key])
    b, h, w = sizes[0]
    x = torch.rand(b, 3, h, w, device=device)
    cp_model = focal(Focal, 'fast', device, with_cp=True)
    (_, g0), (_, g1) = train_grads(fast, x), train_grads(cp_model, x)
    check.add(f'{label}with_cp gradients vs without {h}x{w}', grad_error(g1, g0), TOL['with_cp'])
    if official:
        check.add('fp32 stage-4 block output fast vs official v1 224x224', compare_official(fast, official, device),
                  TOL['fp32'])


def check_compiled(Focal, device: str, size: tuple, check: Check, label: str) -> None:
    """A ``torch.compile`` training step against eager: outputs and every parameter gradient."""
    import torch
    torch._dynamo.reset()
    model = focal(Focal, 'fast', device)
    b, h, w = size
    torch.manual_seed(3)
    x = torch.rand(b, 3, h, w, device=device)
    eager_out, eager_grads = train_grads(model, x)
    backend = 'inductor' if device == 'cuda' else 'aot_eager'  # the CPU smoke test skips code generation
    compiled = torch.compile(model, backend=backend)
    out, grads = train_grads(compiled, x)
    check.add(f'{label}torch.compile ({backend}) train outputs vs eager {h}x{w}',
              max(rel_max(a, r) for a, r in zip(out, eager_out)), TOL['fp32'])
    grads = {k.replace('_orig_mod.', ''): v for k, v in grads.items()}
    check.add(f'{label}torch.compile ({backend}) gradients vs eager {h}x{w}', grad_error(grads, eager_grads),
              TOL['fp32'])


def compare_official(fast, official: str, device: str) -> float:
    """The official v1 model (built at 224 from the user's file) with our weights: last stage-4 block output."""
    import importlib.util

    import torch
    if not osp.isfile(official):
        fail(f'--official {official}: no such file')
    spec = importlib.util.spec_from_file_location('official_focal', official)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.FocalTransformer(img_size=224, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                                    focal_levels=[2] * 4, focal_windows=[7, 5, 3, 1], expand_sizes=[3] * 4,
                                    focal_pool='fc', drop_path_rate=0.)
    state = {k: v for k, v in fast.state_dict().items() if not k.startswith('norm')}
    model.load_state_dict(state, strict=False)
    model = model.to(device).eval()
    x = torch.rand(2, 3, 224, 224, device=device)
    got = []
    hooks = [m.layers[3].blocks[-1].register_forward_hook(lambda mod, i, o: got.append(o)) for m in (model, fast)]
    with torch.no_grad():
        model(x)
        fast.eval()(x)
    for hook in hooks:
        hook.remove()
    return rel_max(got[1], got[0])


def swin_t(device: str):
    """torchvision's Swin-T feature extractor (random weights), the baseline available without mmdet."""
    import torch
    from torchvision.models import swin_t as tv_swin_t
    torch.manual_seed(0)
    return tv_swin_t(weights=None).features.to(device)


def timer(device: str) -> Callable[[Callable[[], None]], float]:
    """Seconds one call takes: CUDA events on a GPU, perf_counter elsewhere."""
    import torch

    def run(fn: Callable[[], None]) -> float:
        if device == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3
        begin = time.perf_counter()
        fn()
        return time.perf_counter() - begin

    return run


def measure(models: Dict[str, object], x, train: bool, repeat: int, warmup: int, device: str) -> Dict[str, float]:
    """Median seconds of a forward (eval, no grad) or a training step (forward + backward) per model, the models
    alternating within each repetition."""
    import torch
    time_it = timer(device)

    def step(model) -> None:
        if train:
            model.train()
            out = model(x)
            out = out if isinstance(out, (tuple, list)) else [out]
            sum(o.float().mean() for o in out).backward()
            model.zero_grad(set_to_none=True)
        else:
            model.eval()
            with torch.no_grad():
                model(x)

    for model in models.values():
        for _ in range(warmup):
            step(model)
    times = {name: [] for name in models}
    for _ in range(repeat):
        for name, model in models.items():
            times[name].append(time_it(lambda: step(model)))
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory(model, x, device: str) -> Optional[float]:
    """MiB allocated at the peak of one training step beyond what was allocated before (CUDA only)."""
    import torch
    if device != 'cuda':
        return None
    model.train()
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = model(x)
    out = out if isinstance(out, (tuple, list)) else [out]
    sum(o.float().mean() for o in out).backward()
    torch.cuda.synchronize()
    model.zero_grad(set_to_none=True)
    return (torch.cuda.max_memory_allocated() - base) / 2 ** 20


def top_kernels(model, x, device: str) -> List[dict]:
    """The ten most expensive device kernels (CPU ops off CUDA) of one training step."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    model.train()
    with profile(activities=activities) as prof:
        out = model(x)
        sum(o.float().mean() for o in out).backward()
        if device == 'cuda':
            torch.cuda.synchronize()
    model.zero_grad(set_to_none=True)
    key = 'self_device_time_total' if device == 'cuda' else 'self_cpu_time_total'
    events = [e for e in prof.key_averages() if getattr(e, key, 0) > 0]
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in events) or 1
    return [dict(name=e.key[:80], ms=getattr(e, key) / 1e3, share=getattr(e, key) / total, calls=e.count)
            for e in events[:10]]


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    parser.add_argument('--quick', action='store_true', help='tiny sizes, one repetition (smoke test)')
    parser.add_argument('--official', help='path to the official classification/focal_transformer.py (optional)')
    parser.add_argument('--out', default=osp.join(REPO, 'work_dirs', 'cuda_check'))
    args = parser.parse_args()
    started = time.time()
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError as exc:
        fail(f'{exc}: this check needs torch and torchvision')
    if args.device == 'cuda' and not torch.cuda.is_available():
        fail('no CUDA device visible (use --device cpu --quick for the smoke test)')
    Focal, FocalV2 = import_backbone()
    plan = QUICK if args.quick else FULL
    device = args.device
    machine = torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU'
    result = dict(device=machine, torch=torch.__version__, cuda=torch.version.cuda, quick=args.quick)
    print(f'cuda_check on {machine}, torch {torch.__version__} (CUDA {torch.version.cuda})', flush=True)

    check = Check()
    check_correctness(Focal, device, plan['correct'], args.official, check, 'Focal-T ')
    check_correctness(FocalV2, device, plan['correct'], None, check, 'Focal-fast-T ')
    for cls, label in ((Focal, 'Focal-T '), (FocalV2, 'Focal-fast-T ')):
        check_compiled(cls, device, plan['correct'][0], check, label)
    check_focalnet(device, plan['correct'][0], check)
    result['correctness'] = check.results

    torch.backends.cuda.matmul.allow_tf32 = True  # how people train; correctness above ran without it
    torch.backends.cudnn.allow_tf32 = True
    models = dict(focal_fast=focal(Focal, 'fast', device), focal_reference=focal(Focal, 'reference', device),
                  focal_v2_fast=focal(FocalV2, 'fast', device), focalnet_t=focalnet('tiny_srf', device),
                  focalnet_b=focalnet('base_srf', device), swin_t=swin_t(device))
    speed = {}
    for b, h, w in plan['fwd']:
        x = torch.rand(b, 3, h, w, device=device)
        speed[f'forward {h}x{w} x{b}'] = measure(models, x, False, plan['repeat'], plan['warmup'], device)
    b, h, w = plan['train']
    x = torch.rand(b, 3, h, w, device=device)
    speed[f'train step {h}x{w} x{b}'] = measure(models, x, True, plan['repeat'], plan['warmup'], device)
    result['speed_s'] = speed
    last_fwd = list(speed)[-2]
    result['ratios_vs_swin_t'] = {k: {m: v[m] / v['swin_t'] for m in v if m != 'swin_t'} for k, v in speed.items()}
    result['peak_memory_mib'] = {f'train step {h}x{w} x{b}': {
        name: peak_memory(models[name], x, device) for name in ('focal_fast', 'swin_t')}}
    result['top_kernels_fast_train_step'] = top_kernels(models['focal_fast'], x, device)
    train_key = f'train step {h}x{w} x{b}'
    result['targets'] = dict(
        forward=dict(ratio=result['ratios_vs_swin_t'][last_fwd]['focal_fast'], target=TARGETS['forward']),
        train_step=dict(ratio=result['ratios_vs_swin_t'][train_key]['focal_fast'], target=TARGETS['train_step']))
    result['seconds'] = time.time() - started

    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'cuda_check.json'), 'w') as f:
        json.dump(result, f, indent=2)
    lines = [f'cuda_check: {machine}, torch {torch.__version__}, {"quick" if args.quick else "full"}, '
             f'{result["seconds"]:.0f} s', 'correctness:']
    for name, r in check.results.items():
        value = 'skipped' if r['value'] is None else f'{r["value"]:.2e}'
        lines.append(f'  {"ok  " if r["ok"] else "FAIL"} {name}: {value} (tol {r["tol"]:.0e})')
    lines.append('speed (median seconds; ratio to Swin-T):')
    for key, times in speed.items():
        lines.append(f'  {key}: ' + ', '.join(f'{m} {t:.4f}' + (f' ({t / times["swin_t"]:.2f}x)' if m != 'swin_t'
                                                                  else '') for m, t in times.items()))
    for key, mem in result['peak_memory_mib'].items():
        lines.append(f'peak memory {key}: ' + ', '.join(
            f'{m} {"n/a" if v is None else f"{v:.0f} MiB"}' for m, v in mem.items()))
    for key, t in result['targets'].items():
        lines.append(f'target {key}: Focal-T fast / Swin-T {t["ratio"]:.2f}x (target <= {t["target"]}x)')
    lines.append('top kernels of the fast training step: ' + '; '.join(
        f'{k["name"]} {100 * k["share"]:.0f}%' for k in result['top_kernels_fast_train_step'][:5]))
    summary = '\n'.join(lines)
    with open(osp.join(args.out, 'summary.txt'), 'w') as f:
        f.write(summary + '\n')
    print(summary)
    if not check.ok:
        sys.exit('cuda_check: correctness FAILED (see above)')


if __name__ == '__main__':
    main()
