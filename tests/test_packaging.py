"""The installable package: a wheel and an sdist that carry the configs, tools and model index, and an installed copy
that works from a folder without the checkout (mmfocal.get_config, mmfocal-config, ``mim search / train / test``)."""

import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest

import mmfocal

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _run(cmd: list, cwd: str, env: dict = None, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f'{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    return result


def _wheel_files(path: str) -> set:
    with zipfile.ZipFile(path) as whl:
        return {n for n in whl.namelist() if '.dist-info/' not in n}


@pytest.fixture(scope='module')
def built(tmp_path_factory) -> dict:
    """A wheel built from a copy of the tracked files, an sdist, and a wheel built from that sdist."""
    root = tmp_path_factory.mktemp('pkg')
    src = root / 'src'
    files = _run(['git', 'ls-files', '-co', '--exclude-standard'], REPO).stdout.split()
    for f in files:
        if osp.isfile(osp.join(REPO, f)):
            os.makedirs(osp.dirname(src / f), exist_ok=True)
            shutil.copy2(osp.join(REPO, f), src / f)
    py = [sys.executable, '-m']
    _run(py + ['pip', 'wheel', '-q', '--no-build-isolation', '--no-deps', '.', '-w', str(root / 'direct')], str(src))
    _run(py + ['build', '--sdist', '--no-isolation', '--outdir', str(root / 'sdist'), '.'], str(src))
    sdist = glob.glob(str(root / 'sdist' / '*.tar.gz'))[0]
    _run(py + ['pip', 'wheel', '-q', '--no-build-isolation', '--no-deps', sdist, '-w', str(root / 'from_sdist')],
         str(root))
    return dict(root=root, wheel=glob.glob(str(root / 'direct' / '*.whl'))[0], sdist=sdist,
                wheel_from_sdist=glob.glob(str(root / 'from_sdist' / '*.whl'))[0])


def test_the_wheel_carries_configs_tools_and_model_index_and_the_sdist_builds_the_same(built: dict) -> None:
    files = _wheel_files(built['wheel'])
    assert osp.basename(built['wheel']) == f'mmfocal-{mmfocal.__version__}-py3-none-any.whl'
    for needed in ('mmfocal/.mim/model-index.yml', 'mmfocal/.mim/configs/mask_rcnn/focal_tiny_1x.py',
                   'mmfocal/.mim/configs/mask_rcnn/metafile.yml', 'mmfocal/.mim/configs/_base_/default_runtime.py',
                   'mmfocal/.mim/tools/train.py', 'mmfocal/.mim/tools/test.py', 'mmfocal/.mim/tools/tool_runner.py',
                   'mmfocal/.mim/tools/misc/make_demo_data.py', 'mmfocal/ops/dispatch.py'):
        assert needed in files, needed
    shipped = {f for f in files if f.startswith('mmfocal/.mim/configs/') and f.endswith('.py')}
    assert len(shipped) == len(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))
    assert not any(f.startswith(('tests/', 'tools/', 'configs/')) or '__pycache__' in f for f in files)
    assert _wheel_files(built['wheel_from_sdist']) == files


@pytest.mark.slow
def test_the_installed_package_works_without_the_checkout(built: dict) -> None:
    site, empty = built['root'] / 'site', built['root'] / 'empty'
    empty.mkdir()
    _run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--target', str(site),
          built['wheel']], str(empty))
    # the installed copy only: the checkout is neither the working folder nor on the path
    env = {**os.environ, 'PYTHONPATH': str(site)}
    code = '\n'.join([
        'import os, mmfocal, torch',
        f'assert mmfocal.__file__.startswith({str(site)!r}), mmfocal.__file__',
        'from mmfocal.apis import get_config, list_configs, load_model_index',
        'from mmfocal.utils.config import build_model',
        'names = list_configs()',
        "assert 'mask_rcnn/focal_tiny_1x' in names and 'demo/mask_rcnn_focal_tiny_demo' in names, names",
        'assert len(load_model_index()) >= 30',
        "for name in ('mask_rcnn/focal_tiny_1x', 'upernet/focal_tiny_160k_ade20k'):",
        "    assert get_config(name).startswith(os.path.join(os.path.dirname(mmfocal.__file__), '.mim'))",
        '    cfg = get_config(name, as_config=True)',
        '    model = build_model(cfg)',
        "    print(name, type(model).__name__, type(model.backbone).__name__)",
    ])
    out = _run([sys.executable, '-c', code], str(empty), env).stdout
    assert 'mask_rcnn/focal_tiny_1x MaskRCNN FocalTransformer' in out
    assert 'upernet/focal_tiny_160k_ade20k EncoderDecoder FocalTransformer' in out
    listed = _run([sys.executable, '-m', 'mmfocal', 'list'], str(empty), env).stdout.split()
    assert 'retinanet/focal_tiny_3x' in listed
    # an external config that inherits an installed one by path
    base = _run([sys.executable, '-m', 'mmfocal', 'path', 'retinanet/focal_tiny_1x'], str(empty), env).stdout.strip()
    (empty / 'mine.py').write_text(f"_base_ = '{base}'\nmodel = dict(backbone=dict(arch='small'))\n")
    shown = _run([sys.executable, '-c', "from mmengine.config import Config; c = Config.fromfile('mine.py'); "
                  "print(c.model.backbone.type, c.model.backbone.arch)"], str(empty), env).stdout
    assert shown.split()[-2:] == ['FocalTransformer', 'small']

    search = _run([sys.executable, '-m', 'mim', 'search', 'mmfocal'], str(empty), env).stdout
    assert 'config id: mask_rcnn_focal_tiny_1x' in search and 'coco/box_ap' in search
    from mmfocal.apis import load_model_index
    assert search.count('config id:') == len(load_model_index())


@pytest.mark.slow
def test_mim_trains_and_tests_the_installed_demo_config(built: dict) -> None:
    site, work = built['root'] / 'site', built['root'] / 'mimrun'
    if not osp.isdir(site):
        _run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--target', str(site),
              built['wheel']], str(built['root']))
    work.mkdir()
    env = {**os.environ, 'PYTHONPATH': str(site)}
    tools = osp.join(str(site), 'mmfocal', '.mim', 'tools')
    _run([sys.executable, osp.join(tools, 'misc', 'make_demo_data.py'), '--out', 'data/demo'], str(work), env)
    config = 'configs/demo/mask_rcnn_focal_tiny_demo.py'  # mim finds it in the installed package
    _run([sys.executable, '-m', 'mim', 'train', 'mmfocal', config, '--work-dir', 'train', '--cfg-options',
          'train_cfg.max_epochs=1', 'train_cfg.val_interval=100', 'train_dataloader.dataset.indices=8',
          'default_hooks.logger.interval=1'], str(work), env)
    checkpoint = work / 'train' / 'epoch_1.pth'
    assert checkpoint.is_file()
    out = _run([sys.executable, '-m', 'mim', 'test', 'mmfocal', config, '--checkpoint', str(checkpoint),
                '--work-dir', 'test', '--cfg-options', 'test_dataloader.dataset.indices=2'], str(work), env).stdout
    assert 'coco/bbox_mAP' in out and 'coco/segm_mAP' in out


def _link_torch_and_torchvision(dest) -> None:
    """Links to this environment's torch, torchvision and what they need (no copies, no downloads)."""
    import importlib.metadata as md
    import re
    dists, todo = {}, ['torch', 'torchvision']
    while todo:
        try:
            dist = md.distribution(todo.pop())
        except md.PackageNotFoundError:  # a requirement for another platform
            continue
        key = dist.metadata['Name'].lower().replace('_', '-')
        if key not in dists:
            dists[key] = dist
            todo += [re.match(r'[A-Za-z0-9_.\-]+', r).group(0) for r in dist.requires or [] if 'extra ==' not in r]
    dest.mkdir()
    for dist in dists.values():
        for top in {str(f).split('/')[0] for f in dist.files or [] if not str(f).startswith('..')}:
            src = dist.locate_file(top)
            if osp.exists(src) and not (dest / top).exists():
                (dest / top).symlink_to(src)


@pytest.mark.slow
def test_the_wheel_installs_without_a_build_and_works_with_only_torch(built: dict) -> None:
    # a fresh virtualenv that sees this stack's torch and torchvision and nothing else; the rest of what
    # mmfocal[timm,deploy] needs comes from the package registry, as wheels only (--only-binary: no build step)
    venv, torch_only = built['root'] / 'fresh', built['root'] / 'torch_only'
    _link_torch_and_torchvision(torch_only)
    _run([sys.executable, '-m', 'venv', str(venv)], str(built['root']))
    py = str(venv / 'bin' / 'python')
    site = _run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], str(venv)).stdout.strip()
    with open(osp.join(site, 'torch_stack.pth'), 'w') as f:
        f.write(str(torch_only) + '\n')
    install = _run([py, '-m', 'pip', 'install', '--only-binary', ':all:', f'{built["wheel"]}[timm,deploy]'],
                   str(venv), timeout=900)
    assert 'Building wheel' not in install.stdout and 'setup.py' not in install.stdout, install.stdout
    installed = _run([py, '-m', 'pip', 'list', '--format=freeze'], str(venv)).stdout.lower()
    assert not [p for p in ('mmcv', 'mmengine', 'mmdet', 'mmsegmentation', 'mmpretrain') if f'\n{p}==' in
                f'\n{installed}'], installed
    out = _run([py, osp.join(REPO, 'tests', 'fresh_env', 'check_core.py')], str(venv), timeout=900).stdout
    assert out.count(' ok\n') == 9 + 2 and 'mmfocal ' in out, out
