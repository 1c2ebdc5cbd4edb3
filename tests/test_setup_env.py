"""tools/setup_env.sh and tools/build_mmcv_wheel.sh: stack selection, wheel lookup and the source-build
branch (paths, C++ standard, wheel cache), without the 25-35 minute compile."""

import os
import os.path as osp
import subprocess
import sys
import tarfile
import textwrap

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SETUP = osp.join(REPO, 'tools', 'setup_env.sh')
BUILD = osp.join(REPO, 'tools', 'build_mmcv_wheel.sh')


def dry_run(cwd: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith('MMFOCAL_') and k != 'VENV'}
    # the repository's own .venv would answer "installed" and hide the branch a test is about
    full['VENV'] = osp.join(cwd, 'no-venv')
    full.update(env)
    return subprocess.run(['bash', SETUP, '--dry-run'], cwd=cwd, env=full, capture_output=True, text=True)


def plan(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return dict(line.split(': ', 1) for line in result.stdout.strip().splitlines())


def fake_wheel(folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    path = osp.join(folder, 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl')
    open(path, 'wb').close()
    return path


def test_relative_venv_is_resolved_against_the_callers_directory(tmp_path) -> None:
    # `make` passes VENV=.venv; the source build later runs in another directory.
    p = plan(dry_run(str(tmp_path), VENV='rel/venv', MMFOCAL_WHEEL_CACHE=str(tmp_path / 'cache')))
    assert p['venv'] == str(tmp_path / 'rel' / 'venv')


@pytest.mark.skipif(not osp.isfile(osp.join(sys.prefix, '.mmfocal-mmcv-stack')),
                    reason='the tests do not run in a venv made by tools/setup_env.sh')
def test_an_installed_mmcv_is_recognised_every_time(tmp_path) -> None:
    # `pip show mmcv | grep -q` under pipefail failed whenever grep exited before pip finished writing.
    stack = open(osp.join(sys.prefix, '.mmfocal-mmcv-stack')).read().strip()
    for _ in range(5):
        p = plan(dry_run(str(tmp_path), VENV=sys.prefix, MMFOCAL_STACK=stack))
        assert p['mmcv'] == 'installed'


def test_each_stack_takes_only_its_own_wheel(tmp_path) -> None:
    wheels = str(tmp_path / 'wheels')
    default_whl, t21_whl = fake_wheel(wheels), fake_wheel(osp.join(wheels, 'torch2.1'))
    cache = str(tmp_path / 'cache')
    p = plan(dry_run(str(tmp_path), MMFOCAL_WHEEL_DIR=wheels, MMFOCAL_WHEEL_CACHE=cache))
    assert p['mmcv'] == f'wheel {default_whl}' and p['stack'].startswith('torch2.14 (torch 2.14.1')
    p = plan(dry_run(str(tmp_path), MMFOCAL_WHEEL_DIR=wheels, MMFOCAL_WHEEL_CACHE=cache, MMFOCAL_STACK='torch2.1'))
    assert p['mmcv'] == f'wheel {t21_whl}' and p['stack'].startswith('torch2.1 (torch 2.1.2')
    os.remove(t21_whl)  # the default stack's wheel would not load on torch 2.1: build instead
    p = plan(dry_run(str(tmp_path), MMFOCAL_WHEEL_DIR=wheels, MMFOCAL_WHEEL_CACHE=cache, MMFOCAL_STACK='torch2.1'))
    assert p['mmcv'] == f'source build into {cache}/torch2.1 (from PyPI)'


def test_source_build_wheels_are_cached_per_stack(tmp_path) -> None:
    cache = str(tmp_path / 'cache')
    p = plan(dry_run(str(tmp_path), MMFOCAL_WHEEL_CACHE=cache, MMFOCAL_MMCV_SDIST='/x/mmcv-2.1.0.tar.gz'))
    assert p['mmcv'] == f'source build into {cache} (from /x/mmcv-2.1.0.tar.gz)'
    built = fake_wheel(osp.join(cache, 'torch2.1'))
    p = plan(dry_run(str(tmp_path), MMFOCAL_WHEEL_CACHE=cache, MMFOCAL_STACK='torch2.1'))
    assert p['mmcv'] == f'wheel {built}'
    p = plan(dry_run(str(tmp_path), MMFOCAL_WHEEL_CACHE=cache))  # the default stack does not take it
    assert p['mmcv'].startswith('source build')


def test_unknown_stack_is_one_clear_error(tmp_path) -> None:
    result = dry_run(str(tmp_path), MMFOCAL_STACK='torch1.13')
    assert result.returncode == 2
    assert 'unknown MMFOCAL_STACK=torch1.13; choose one of: torch2.1 torch2.14' in result.stderr


def test_stack_pins_agree_with_setup_py() -> None:
    # setup.py's lower bound is the oldest stack we test.
    pins = {}
    for stack in ('torch2.14', 'torch2.1'):
        for line in open(osp.join(REPO, 'requirements', f'{stack}.txt')):
            if line.startswith('torch=='):
                pins[stack] = line.strip().split('==')[1]
    setup_py = open(osp.join(REPO, 'setup.py')).read()
    assert "'torch>=2.1'" in setup_py and pins == {'torch2.14': '2.14.1', 'torch2.1': '2.1.2'}


FAKE_SETUP = textwrap.dedent('''\
    import os
    from setuptools import setup
    # What the real setup.py does with the flag: pass it to the C++ compiler.
    extra_compile_args = {'cxx': ['-std=c++17']}
    with open(os.environ['FAKE_MMCV_RECORD'], 'w') as f:
        f.write(' '.join(extra_compile_args['cxx']) + ' MMCV_WITH_OPS=' + os.environ.get('MMCV_WITH_OPS', ''))
    setup(name='mmcv', version='2.1.0', py_modules=[])
''')


def test_source_build_uses_the_standard_torch_requires(tmp_path) -> None:
    sdist_dir = tmp_path / 'src'
    pkg = sdist_dir / 'mmcv-2.1.0'
    pkg.mkdir(parents=True)
    (pkg / 'setup.py').write_text(FAKE_SETUP)
    with tarfile.open(sdist_dir / 'mmcv-2.1.0.tar.gz', 'w:gz') as tar:
        tar.add(pkg, arcname='mmcv-2.1.0')
    record = tmp_path / 'record.txt'
    caller = tmp_path / 'elsewhere'
    caller.mkdir()
    # relative paths from the caller's directory, as `make` passes them
    result = subprocess.run(['bash', BUILD, sys.executable, '../out', '../src/mmcv-2.1.0.tar.gz'], cwd=caller,
                            env={**os.environ, 'FAKE_MMCV_RECORD': str(record)}, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    wheel = result.stdout.strip().splitlines()[-1]
    assert osp.realpath(osp.dirname(wheel)) == osp.realpath(tmp_path / 'out')
    assert osp.basename(wheel).startswith('mmcv-2.1.0-')
    header = open(osp.join(osp.dirname(torch.__file__), 'include', 'ATen', 'ATen.h')).read()
    std = 'c++20' if 'C++20 or later' in header else 'c++17'  # torch 2.14: c++20, torch 2.1: c++17
    assert record.read_text() == f'-std={std} MMCV_WITH_OPS=1'


@pytest.mark.parametrize('args', [[], ['python']])
def test_build_script_usage(args: list) -> None:
    result = subprocess.run(['bash', BUILD] + args, capture_output=True, text=True)
    assert result.returncode == 2 and 'usage:' in result.stderr
