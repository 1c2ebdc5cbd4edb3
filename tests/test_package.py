"""The package installs the real OpenMMLab stack and plugs into mmdet and mmseg."""

import fractions
import os
import os.path as osp
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

import mmfocal
from mmfocal.utils.checkpoint_compat import safe_torch_load


def test_version_is_the_installed_distributions_and_a_valid_release() -> None:
    # the version users see (mmfocal.__version__) is the one pip installed (the package metadata from setup.py)
    import importlib.metadata

    from packaging.version import Version
    from mmfocal.version import __version__
    assert mmfocal.__version__ == __version__ == importlib.metadata.version('mmfocal')
    assert not Version(__version__).is_devrelease and len(Version(__version__).release) == 3


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_import_registers_backbone_in_both_registries(scope: str) -> None:
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    assert registry.get('FocalTransformer') is mmfocal.FocalTransformer
    model = registry.build(dict(type='FocalTransformer', arch='tiny', depths=(1, 1, 1, 1)))
    assert isinstance(model, mmfocal.FocalTransformer)


def test_registration_through_custom_imports_in_a_fresh_process() -> None:
    code = textwrap.dedent("""
        from mmengine.config import Config
        from mmengine.utils import import_modules_from_strings
        cfg = Config(dict(custom_imports=dict(imports=['mmfocal'], allow_failed_imports=False)))
        import_modules_from_strings(**cfg.custom_imports)
        from mmdet.registry import MODELS as D
        from mmseg.registry import MODELS as S
        from mmpretrain.registry import MODELS as P
        print(D.get('FocalTransformer').__name__, S.get('FocalTransformer').__name__)
        for registry in (D, S, P):
            print(type(registry.build(dict(type='FocalNet', arch='tiny_lrf'))).__name__)
    """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ['FocalTransformer', 'FocalTransformer'] + ['FocalNet'] * 3


_OPENMMLAB = ('mmdet', 'mmseg', 'mmpretrain', 'mmcv', 'mmengine')


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True,
                          check=True).stdout


def test_import_mmfocal_imports_no_openmmlab_package_timm_or_dynamo() -> None:
    out = _fresh(f"""
        import sys
        import mmfocal
        print(sorted(m for m in sys.modules if m.split('.')[0] in {_OPENMMLAB + ('timm', )!r}
                     or m == 'torch._dynamo'))
    """)
    assert out.strip() == '[]'


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize('mmfocal_first', [True, False])
def test_each_registry_gets_the_backbones_whichever_is_imported_first(scope: str, mmfocal_first: bool) -> None:
    first, second = 'import mmfocal', f'from {scope}.registry import MODELS'
    out = _fresh(f"""
        {first if mmfocal_first else second}
        {second if mmfocal_first else first}
        from {scope}.registry import MODELS
        import mmfocal
        for name in ('FocalTransformer', 'FocalTransformerV2', 'FocalNet'):
            assert MODELS.get(name) is getattr(mmfocal, name), name
        model = MODELS.build(dict(type='FocalTransformerV2', embed_dims=16, depths=(1, 1, 1, 1), num_heads=1))
        print(type(model).__name__, type(MODELS.build(dict(type='FocalNet', arch='tiny_lrf'))).__name__)
    """)
    assert out.split() == ['FocalTransformerV2', 'FocalNet']


@pytest.mark.parametrize('mmfocal_first', [True, False])
def test_reppoints_v2_and_the_timm_models_register_whichever_is_imported_first(mmfocal_first: bool) -> None:
    first, second = 'import mmfocal', 'import mmdet.models, timm'
    out = _fresh(f"""
        {first if mmfocal_first else second}
        {second if mmfocal_first else first}
        from mmdet.registry import MODELS, TASK_UTILS
        print(MODELS.get('RepPointsV2Head').__name__, MODELS.get('RPDBiFPN').__name__,
              TASK_UTILS.get('PointAssignerV2').__name__, len(timm.list_models('focal*_patch4_window7_224')))
    """)
    assert out.split() == ['RepPointsV2Head', 'RPDBiFPN', 'PointAssignerV2', '9']


def test_torch_compile_after_a_plain_import_runs_the_geometry_step_eagerly() -> None:
    # importing mmfocal leaves dynamo alone; once torch.compile imports it, the step is marked for dynamo
    from mmfocal.models.backbones import focal_base
    assert 'prepare_geometry' in focal_base._EAGER_STEPS  # this process imported dynamo (pytest, timm)
    out = _fresh("""
        import sys
        import mmfocal
        from mmfocal.models.backbones import focal_base
        before = 'prepare_geometry' in focal_base._EAGER_STEPS
        import torch._dynamo
        print(before, focal_base._EAGER_STEPS['prepare_geometry'] is not focal_base._prepare_geometry)
    """)
    assert out.split() == ['False', 'True']


def test_require_scope_explains_unknown_and_missing_scopes(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmfocal import registry
    registry.require_scope('mmdet')
    registry.require_scope('mmpretrain')
    with pytest.raises(ValueError, match="supports 'mmdet'.*'mmpretrain' \\(classification\\)"):
        registry.require_scope('mmocr')
    monkeypatch.setattr(registry, 'REGISTERED_SCOPES', ['mmdet'])
    with pytest.raises(ImportError, match='pip install mmsegmentation==1.2.2'):
        registry.require_scope('mmseg')
    with pytest.raises(ImportError, match='pip install mmpretrain==1.2.0'):
        registry.require_scope('mmpretrain')


# --- mmengine checkpoints under torch's weights_only default ----------------------------------

class TinyModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def make_runner(work_dir: str, max_iters: int, resume: bool = False, load_from: str = None, hooks=()):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Wrapped(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.net = TinyModel()

        def forward(self, inputs, data_samples=None, mode='tensor'):
            x = torch.stack(inputs) if isinstance(inputs, list) else inputs
            return {'loss': (self.net(x) - 1).pow(2).mean()}

    class Data(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 16

        def __getitem__(self, i: int) -> dict:
            return dict(inputs=torch.full((4, ), float(i)))

    torch.manual_seed(0)
    return Runner(
        model=Wrapped(), work_dir=work_dir, resume=resume, load_from=load_from,
        train_dataloader=dict(dataset=Data(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=10)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=list(hooks), randomness=dict(seed=0), log_level='WARNING')


class Snapshot:
    """Records iteration, learning rate and optimizer moments before each training iteration."""

    def __init__(self) -> None:
        self.seen = {}

    def hook(self):
        from mmengine.hooks import Hook
        seen = self.seen

        class _Hook(Hook):
            def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
                opt = runner.optim_wrapper.optimizer
                moments = [s['exp_avg'].clone() for s in opt.state.values()]
                seen[runner.iter] = (runner.optim_wrapper.get_lr()['lr'][0], moments)

        return _Hook()


def test_checkpoint_resume_round_trip_under_weights_only(tmp_path) -> None:
    straight = Snapshot()
    make_runner(str(tmp_path / 'straight'), max_iters=4, hooks=[straight.hook()]).train()

    work = str(tmp_path / 'run')
    make_runner(work, max_iters=2).train()
    ckpt = osp.join(work, 'iter_2.pth')
    assert safe_torch_load(ckpt)['meta']['iter'] == 2  # needs mmfocal's allow-list (or restricted unpickler)

    resumed = Snapshot()
    runner = make_runner(work, max_iters=4, resume=True, load_from=ckpt, hooks=[resumed.hook()])
    runner.train()
    assert sorted(resumed.seen) == [2, 3]  # continues from the saved iteration
    for it in (2, 3):
        lr, moments = resumed.seen[it]
        lr_ref, moments_ref = straight.seen[it]
        assert lr == pytest.approx(lr_ref)  # same schedule position
        assert len(moments) == len(moments_ref) > 0
        for a, b in zip(moments, moments_ref):
            assert torch.allclose(a, b)  # same optimizer state as an uninterrupted run
    assert runner.iter == 4 and osp.exists(osp.join(work, 'iter_4.pth'))


def test_test_time_load_from_checkpoint(tmp_path) -> None:
    from mmengine.runner import load_checkpoint
    work = str(tmp_path / 'run')
    runner = make_runner(work, max_iters=2)
    runner.train()
    model = TinyModel()
    load_checkpoint(model, osp.join(work, 'iter_2.pth'), revise_keys=[(r'^net\.', '')])
    assert torch.equal(model.fc.weight, runner.model.net.fc.weight)


def _torch_load_refuses_pickles_by_default(tmp_path) -> bool:
    """Whether this torch's ``torch.load()`` defaults to ``weights_only=True`` (>= 2.6), by behaviour."""
    path = tmp_path / 'fraction.pth'
    torch.save({'x': fractions.Fraction(1, 2)}, path)
    try:
        torch.load(path)
    except pickle.UnpicklingError:
        return True
    return False


def test_plain_torch_cannot_read_mmengine_checkpoints_without_mmfocal(tmp_path) -> None:
    if not _torch_load_refuses_pickles_by_default(tmp_path):
        pytest.skip('this torch loads pickled objects by default: mmengine checkpoints load without mmfocal')
    work = str(tmp_path / 'run')
    make_runner(work, max_iters=2).train()
    code = f"import torch; torch.load({osp.join(work, 'iter_2.pth')!r})"
    bare = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert bare.returncode != 0 and 'UnpicklingError' in bare.stderr
    # the allow-list is filled when both are imported, in either order (import mmfocal alone imports no mmengine)
    for imports in ('import mmfocal, mmengine; ', 'import mmengine, mmfocal; '):
        fixed = subprocess.run([sys.executable, '-c', imports + code], capture_output=True, text=True)
        assert fixed.returncode == 0, fixed.stderr


class _Evil:
    """Unpickling calls ``os.system``: what a malicious checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _EvilGetattr:
    def __reduce__(self):
        import numpy as np
        return getattr, (np.ndarray, 'tofile')


@pytest.mark.parametrize('restricted', [False, True], ids=['torch_default', 'restricted_unpickler'])
def test_safe_load_refuses_pickled_code_and_reads_mmengine_checkpoints(tmp_path, restricted: bool) -> None:
    from mmfocal.utils import checkpoint_compat

    def load(path):
        if restricted:  # the torch 2.1 path, exercised on every torch
            return torch.load(path, weights_only=False, pickle_module=checkpoint_compat._restricted_pickle_module())
        return safe_torch_load(path)

    marker = tmp_path / 'pwned'
    for evil in (_Evil(str(marker)), _EvilGetattr()):
        path = tmp_path / 'evil.pth'
        torch.save({'state_dict': {'w': torch.ones(2)}, 'x': evil}, path)
        with pytest.raises(pickle.UnpicklingError):
            load(path)
    assert not marker.exists()

    work = str(tmp_path / 'run')
    runner = make_runner(work, max_iters=2)
    runner.train()
    ckpt = load(osp.join(work, 'iter_2.pth'))
    assert ckpt['meta']['iter'] == 2 and len(ckpt['message_hub']['log_scalars']) > 0
    assert torch.equal(ckpt['state_dict']['net.fc.weight'], runner.model.net.fc.weight)
    plain = tmp_path / 'plain.pth'
    torch.save({'s': {1, 2}, 'b': b'xy', 't': (torch.zeros(1), 3.5)}, plain)
    assert load(plain)['s'] == {1, 2} and load(plain)['b'] == b'xy'


def test_backbone_init_refuses_a_malicious_checkpoint(tmp_path) -> None:
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'model': {'patch_embed.proj.weight': torch.zeros(96, 3, 4, 4)}, 'x': _Evil(str(marker))}, path)
    model = mmfocal.FocalTransformer(arch='tiny', depths=(1, 1, 1, 1),
                                     init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(RuntimeError, match='safely'):
        model.init_weights()
    assert not marker.exists()


def test_allow_list_does_not_open_getattr_in_general(tmp_path) -> None:
    path = tmp_path / 'evil.pth'
    torch.save({'x': _EvilGetattr()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
