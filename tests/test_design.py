"""The layout the code promises (docs/architecture.md): attention machinery in ops, one backbone family, a
library that never ends the process, configs that dump clean; and the state the attention leaves behind."""

import ast
import glob
import inspect
import os.path as osp

import pytest
import torch

import mmfocal
from mmfocal import ops
from mmfocal.models import FocalTransformer, FocalTransformerV2
from mmfocal.models.backbones.focal_base import FocalBackbone
from mmfocal.ops import AttentionPath, attention_settings, choose_path, scratch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = osp.join(REPO, 'mmfocal')
SMALL = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), drop_path_rate=0.)
FAMILIES = [FocalTransformer, FocalTransformerV2]


def _package_files() -> list:
    return sorted(glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True))


def _small(cls: type, **kwargs) -> FocalBackbone:
    torch.manual_seed(0)
    model = cls(**SMALL, **kwargs)
    model.init_weights()
    return model


# --- layout -------------------------------------------------------------------------------

def test_every_autograd_function_and_kernel_choice_lives_in_ops() -> None:
    functions = {}
    for path in _package_files():
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any('Function' in ast.unparse(b) for b in node.bases):
                functions[node.name] = osp.relpath(path, PACKAGE)
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(('flash_cpu_op', 'exporting')):
                functions.setdefault(f'call {ast.unparse(node.func)}', osp.relpath(path, PACKAGE))
    assert {'FocalAttentionCore', 'FocalV2Core', 'BiasLookup'} <= set(functions)
    assert all(where.startswith('ops/') for where in functions.values()), functions


def test_the_library_never_ends_the_process_and_stays_small() -> None:
    # `python -m mmfocal` (mmfocal/__main__.py) is the one launcher: it turns main()'s status into the exit code
    for path in _package_files():
        source = open(path).read()
        rel = osp.relpath(path, PACKAGE)
        if rel != '__main__.py':
            assert not any(word in source for word in ('sys.exit', 'os._exit', 'exit(', 'SystemExit')), rel
        assert len(source.splitlines()) <= 450, rel


def test_both_families_are_one_backbone_with_their_own_version_and_presets() -> None:
    for cls in FAMILIES:
        assert issubclass(cls, FocalBackbone) and not issubclass(cls, tuple(set(FAMILIES) - {cls}))
        assert {'_version', 'arch_zoo'} <= set(vars(cls)), cls  # declared by the family, not inherited
    v2 = _small(FocalTransformerV2)
    assert v2.state_dict()._metadata['']['version'] == FocalTransformerV2._version
    assert FocalTransformerV2._focal_v2 and not FocalTransformer._focal_v2


@pytest.mark.parametrize('cls', FAMILIES)
def test_each_family_names_itself_in_messages(cls: type, tmp_path) -> None:
    missing = str(tmp_path / 'nothing.pth')
    model = cls(**SMALL, init_cfg=dict(type='Pretrained', checkpoint=missing))
    with pytest.raises(FileNotFoundError, match=f'{cls.__name__} init_cfg checkpoint'):
        model.init_weights()
    with pytest.raises(ValueError, match=f'^{cls.__name__}: '):
        cls(**SMALL, out_indices=(7, ))
    with pytest.raises(ValueError, match=f'^{cls.__name__} expects'):
        model(torch.rand(3, 64, 64))


@pytest.mark.parametrize('cls', FAMILIES)
def test_fc_window_pooling_starts_as_a_mean_in_both_families(cls: type) -> None:
    model = _small(cls)
    pools = [b.pool_layers[0] for stage in model.layers for b in stage.blocks]
    assert pools and all(torch.all(p.weight == 1. / 49) and torch.all(p.bias == 0) for p in pools)


# --- the dispatcher and the caches ---------------------------------------------------------

def test_the_dispatcher_picks_one_path_per_call() -> None:
    cpu = torch.device('cpu')
    for family in ('v1', 'v2'):
        assert choose_path(family, 'reference', cpu, True) is AttentionPath.REFERENCE
        assert choose_path(family, 'fast', cpu, True, dropout=True) is AttentionPath.REFERENCE
        assert choose_path(family, 'fast', cpu, False) is AttentionPath.FUSED
    for flash in (True, False):  # on CPU both cores keep the lse: from the flash op or from explicit logits
        with attention_settings(cpu_flash=flash):
            assert choose_path('v1', 'fast', cpu, True) is AttentionPath.CORE
            assert choose_path('v2', 'fast', cpu, True) is AttentionPath.CORE
    assert choose_path('v2', 'fast', torch.device('meta'), True) is AttentionPath.AUTOGRAD


def test_the_flash_op_is_looked_up_once_per_process(monkeypatch) -> None:
    # the training loops ask once per piece of windows; a failed lookup (torch 2.1) took 0.57 ms each time
    from mmfocal.ops import settings as settings_module
    lookups = []

    class Ops:
        def __getattr__(self, name: str):
            lookups.append(name)
            raise AttributeError(name)

    monkeypatch.setattr(torch.ops, 'aten', Ops())
    settings_module._cpu_flash_lookup.cache_clear()
    try:
        assert [ops.flash_cpu_op() for _ in range(5)] == [None] * 5 and len(lookups) == 1
        with attention_settings(cpu_flash=False):
            assert ops.flash_cpu_op() is None and len(lookups) == 1
    finally:
        settings_module._cpu_flash_lookup.cache_clear()  # the real op again for later tests


def test_the_piece_policy_cuts_equal_pieces_within_the_budget() -> None:
    with attention_settings(piece_bytes=1000):
        pieces = ops.pieces(10, 300, torch.device('cpu'))
    sizes = [p.stop - p.start for p in pieces]
    assert sum(sizes) == 10 and pieces[0].start == 0 and all(a.stop == b.start for a, b in zip(pieces, pieces[1:]))
    assert max(sizes) * 300 <= 1000 and max(sizes) - min(sizes) <= 1
    assert ops.pieces(10, 300, torch.device('meta')) == [slice(0, 10)]  # caching allocators: one piece


def test_row_scatter_sums_repeated_rows_exactly_as_index_add() -> None:
    torch.manual_seed(0)
    index = torch.randint(0, 7, (50,))  # every row hit several times
    rows = torch.randn(50, 12, dtype=torch.float64)
    want = torch.zeros(7, 12, dtype=torch.float64).index_add_(0, index, rows)
    dst = torch.zeros(7, 12, dtype=torch.float64)
    assert ops.scatter_add_rows(dst, index, rows) is dst
    assert torch.equal(dst, want)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_explicit_attention_returns_the_softmax_output_and_log_sum_exp(dtype: torch.dtype) -> None:
    # the training cores' forward without a CPU flash op: strided keys and values (views of gathered rows) and a
    # mask broadcast over windows (v1's shared bias) as the cores pass them; the lse in fp32 for bf16
    torch.manual_seed(0)
    q = torch.randn(3, 2, 5, 8).to(dtype)
    kv = torch.randn(3, 7, 2, 2, 8).to(dtype)  # (windows, keys, k/v, heads, d)
    k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
    mask = torch.randn(1, 2, 5, 7).to(dtype)
    logits = (q.double() * 0.3) @ k.double().transpose(-1, -2) + mask.double()
    out, lse = ops.explicit_attention(q, k, v, mask, 0.3, 'test_')
    assert out.shape == q.shape and out.dtype == dtype and lse.dtype == torch.float32
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert torch.allclose(lse.double(), logits.logsumexp(-1), atol=tol, rtol=tol)
    assert torch.allclose(out.double(), logits.softmax(-1) @ v.double(), atol=tol, rtol=tol)
    scratch.release()


def test_one_bounded_geometry_cache_serves_both_families() -> None:
    from mmfocal.ops import dispatch
    ops.clear_geometry_cache()
    x = torch.rand(1, 3, 64, 64)
    models = [_small(cls).eval() for cls in FAMILIES]
    with torch.no_grad():
        for model in models:
            model(x)
        assert {key[0] for key in dispatch._GEOMETRY_CACHE} == {'v1', 'v2'}
        entries = len(dispatch._GEOMETRY_CACHE)
        models[0](x)  # the same sizes again: served from the cache
        assert len(dispatch._GEOMETRY_CACHE) == entries
        with attention_settings(geometry_cache_size=3):
            models[0](torch.rand(1, 3, 96, 96))
            assert len(dispatch._GEOMETRY_CACHE) == 3  # least recently used ones went first
            assert all(key[0] == 'v1' for key in dispatch._GEOMETRY_CACHE)
    ops.clear_geometry_cache()


# --- state left behind ---------------------------------------------------------------------

class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize('cls', FAMILIES)
def test_a_forward_that_raises_leaves_no_buffers_behind(cls: type, monkeypatch) -> None:
    model = _small(cls).train()
    block = model.layers[2].blocks[0]

    def explode(*args, **kwargs):
        raise _Boom('stage 3 failed')

    monkeypatch.setattr(block, 'forward', explode)
    with pytest.raises(_Boom):
        model(torch.rand(2, 3, 96, 128))
    assert scratch.nbytes == 0 and not scratch.release_hooked


@pytest.mark.parametrize('cls', FAMILIES)
def test_a_teacher_forward_between_forward_and_backward_changes_no_gradient(cls: type) -> None:
    x = torch.rand(2, 3, 96, 128)
    student, teacher = _small(cls).train(), _small(cls).eval()

    def grads(with_teacher: bool) -> list:
        student.zero_grad()
        feats = student(x)
        if with_teacher:
            with torch.no_grad():  # a larger map: every buffer the student's backward reuses is overwritten
                teacher(torch.rand(1, 3, 160, 224))
        sum(f.square().sum() for f in feats).backward()
        return [p.grad.clone() for p in student.parameters()]

    alone, between = grads(False), grads(True)
    assert all(torch.equal(a, b) for a, b in zip(alone, between))
    assert scratch.nbytes == 0


# --- configs -------------------------------------------------------------------------------

def _top_level_keys(config: str) -> set:
    from mmengine.config import Config
    return set(Config.fromfile(config).keys())


@pytest.mark.slow
def test_configs_dump_the_experiment_and_nothing_else() -> None:
    # every top-level name of a shipped config is one mmdet's / mmseg's / mmpretrain's own configs (or mmengine) use
    import mmdet
    import mmpretrain
    import mmseg
    reference = set()
    for package, config in ((mmdet, 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
                            (mmdet, 'sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py'),
                            (mmdet, 'atss/atss_r50_fpn_1x_coco.py'),
                            (mmseg, 'swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'),
                            (mmpretrain, 'swin_transformer/swin-tiny_16xb64_in1k.py'),
                            (mmdet, 'dino/dino-5scale_swin-l_8xb2-12e_coco.py'),
                            (mmdet, 'mask2former/mask2former_r50_8xb2-lsj-50e_coco.py'),
                            (mmseg, 'mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py')):
        reference |= _top_level_keys(osp.join(osp.dirname(package.__file__), '.mim', 'configs', config))
    reference |= {'custom_imports', 'randomness'}  # keys of mmengine's config / Runner these bases leave out
    configs = sorted(c for c in glob.glob(osp.join(REPO, 'configs', '*', '*.py')) if '/_base_/' not in c)
    assert len(configs) >= 33
    for config in configs:
        extra = _top_level_keys(config) - reference
        assert not extra, (osp.relpath(config, REPO), sorted(extra))
    assert 'absolute_pos_embed' not in open(osp.join(REPO, 'configs/_base_/schedules/focal_adamw_1x.py')).read()




@pytest.mark.parametrize('cls', FAMILIES)
def test_tables_cached_under_inference_mode_serve_a_later_training_step(cls: type) -> None:
    # the gather tables are cached per map size: built inside torch.inference_mode they must still be tensors a
    # training step may save for its backward
    ops.clear_geometry_cache()
    model = _small(cls)
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        model.eval()(x)
    model.train()
    sum(o.sum() for o in model(x)).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_the_model_core_imports_torch_only() -> None:
    # the core: every module `import mmfocal` loads, plus the classifiers; the OpenMMLab-only modules (RepPointsV2,
    # apis, engine, utils.config / complexity) and the timm face are imported only by their library's import hook
    core = [p for p in _package_files() if osp.relpath(p, PACKAGE).startswith(
        ('ops/', 'models/layers/', 'models/backbones/', 'models/utils/', 'models/classifiers.py', 'models/__init__',
         '__init__.py', 'registry.py', 'version.py', 'utils/__init__', 'utils/logging.py', 'utils/torch_compat.py',
         'utils/checkpoint_compat.py'))]
    assert len(core) >= 20
    foreign = ('mmcv', 'mmengine', 'mmdet', 'mmseg', 'mmpretrain', 'timm', 'numpy')
    for path in core:
        for node in ast.parse(open(path).read()).body:  # module level: what importing the module runs
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ''] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not [n for n in names if n.split('.')[0] in foreign], (osp.relpath(path, PACKAGE), names)
