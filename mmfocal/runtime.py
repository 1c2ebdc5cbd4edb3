"""Runtime support for the tools: distributed CPU runs, clear input errors, config preparation."""

import os
import os.path as osp
from typing import List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

__all__ = ['CPUCompatibleDDP', 'UserError', 'check_dataset_paths', 'setup_distributed_cpu', 'dataset_hint',
           'load_tool_config', 'build_runner', 'run_guarded']


class UserError(Exception):
    """An input problem the user can fix; the tools print it without a traceback."""


@MODEL_WRAPPERS.register_module()
class CPUCompatibleDDP(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps CPU modules (gloo), where ``device_ids`` must be None.

    mmengine passes ``device_ids=[LOCAL_RANK]`` to every DDP wrapper, which PyTorch rejects for a model
    on the CPU. On CUDA this behaves exactly like ``MMDistributedDataParallel``.

    Args:
        module: The model.
        device_ids: Devices of a CUDA model; ignored for CPU models.
        **kwargs: Passed to ``DistributedDataParallel``.
    """

    def __init__(self, module: torch.nn.Module, device_ids: Optional[List[int]] = None, **kwargs) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)


def setup_distributed_cpu(cfg: Config, launcher: str) -> bool:
    """Prepare a torchrun launch on a machine without CUDA: gloo process group and a CPU-capable DDP wrapper.

    mmengine's pytorch launcher calls ``torch.cuda.set_device`` and defaults to NCCL; initialising the
    process group first (gloo) makes mmengine keep it.

    Args:
        cfg: The config (modified in place).
        launcher: The ``--launcher`` value.

    Returns:
        True when the run is distributed on CPU.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or {}
    wrapper['type'] = 'CPUCompatibleDDP'
    cfg.model_wrapper_cfg = wrapper
    return True


def load_tool_config(config: str, cfg_options: Optional[dict], launcher: str,
                     work_dir: Optional[str]) -> Tuple[Config, str]:
    """What tools/train.py and tools/test.py both do with a config before their own options.

    Loads the file, applies ``--cfg-options``, checks the scope, sets launcher and work dir, prepares a CPU
    distributed run and switches SyncBN to BN when it cannot synchronise.

    Args:
        config: Config path.
        cfg_options: ``--cfg-options`` overrides, or None.
        launcher: ``--launcher`` value.
        work_dir: ``--work-dir`` value, or None for ``./work_dirs/<config name>``.

    Returns:
        (config, ``'mmdet'`` or ``'mmseg'``).
    """
    from .apis import syncbn_to_bn, task_of
    if not osp.isfile(config):
        raise UserError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = task_of(cfg)
    cfg.launcher = launcher
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    distributed_cpu = setup_distributed_cpu(cfg, launcher)
    # SyncBN needs several processes, and CUDA: on CPU even a gloo run uses BN.
    syncbn_to_bn(cfg, distributed=launcher != 'none' and not distributed_cpu)
    return cfg, scope


def dataset_hint(scope: str) -> str:
    """Where the real datasets go, and how to run the demo instead."""
    if scope == 'mmseg':
        real = ('ADE20K goes to data/ade/ADEChallengeData2016 (images/ and annotations/ from '
                'http://sceneparsing.csail.mit.edu, see mmseg docs "Prepare datasets")')
    else:
        real = ('COCO 2017 goes to data/coco (train2017/, val2017/, annotations/instances_*.json from '
                'https://cocodataset.org)')
    return f'{real}; or run the embedded demo: `make demo` (data from tools/misc/make_demo_data.py).'


def _datasets(node) -> list:
    """All dataset configs inside a dataloader's dataset (wrappers such as RepeatDataset included)."""
    if not isinstance(node, dict):
        return []
    found = [node] if 'ann_file' in node or 'data_prefix' in node else []
    for key in ('dataset', 'datasets'):
        child = node.get(key)
        for c in (child if isinstance(child, (list, tuple)) else [child]):
            found += _datasets(c)
    return found


def check_dataset_paths(cfg: Config, scope: str, loaders: List[str]) -> None:
    """Raise :class:`UserError` naming the missing folder/file of any dataset used by ``loaders``.

    Args:
        cfg: The config.
        scope: ``'mmdet'`` or ``'mmseg'``.
        loaders: Names such as ``'train_dataloader'``.
    """
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for ds in _datasets(cfg[loader].get('dataset')):
            root = ds.get('data_root') or ''
            paths = []
            if ds.get('ann_file'):
                paths.append(osp.join(root, ds['ann_file']))
            prefix = ds.get('data_prefix') or {}
            for value in (prefix.values() if isinstance(prefix, dict) else [prefix]):
                if isinstance(value, str) and value:
                    paths.append(osp.join(root, value))
            for path in paths:
                if not osp.exists(path):
                    raise UserError(f'{loader}: {path} does not exist. {dataset_hint(scope)}')


def build_runner(cfg: Config, scope: str):
    """Build mmengine's Runner (or the config's ``runner_type``) with the scope's modules registered.

    Args:
        cfg: A prepared config.
        scope: ``'mmdet'`` or ``'mmseg'``.

    Returns:
        The runner.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if scope == 'mmdet':
        from mmdet.utils import register_all_modules
    else:
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def run_guarded(fn, cfg: Optional[Config] = None) -> None:
    """Run ``fn``; turn known input problems (missing files, corrupt images or annotations) into one
    ``error:`` line and exit code 1 instead of a traceback.

    Args:
        fn: A callable without arguments.
        cfg: The config, to name its annotation files in messages.
    """
    import sys
    finished = False
    try:
        fn()
        finished = True
    except (UserError, FileNotFoundError) as exc:
        sys.exit(f'error: {exc}')
    except Exception as exc:  # noqa: BLE001
        message = explain_data_error(exc, _annotation_files(cfg) if cfg is not None else [])
        if message is None:
            raise
        sys.exit(f'error: {message}')
    finally:
        _shutdown_distributed(finished)


def _shutdown_distributed(finished: bool) -> None:
    """Tear down a process group that mmengine leaves alive, without the gloo abort at exit.

    Args:
        finished: Whether the tool's work completed on this rank (then all ranks meet first).
    """
    import logging
    import sys

    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    multi_process = dist.get_world_size() > 1
    if finished:
        # ranks end at different times (rank 0 writes checkpoints and logs): tearing gloo down while a
        # peer is still inside a collective aborts that peer
        dist.barrier()
    dist.destroy_process_group()
    if finished and multi_process:
        # gloo's C++ threads can still abort the interpreter's final teardown ("terminate called
        # without an active exception", exit -6) after a clean run; everything is written, so leave
        # without running static destructors
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _annotation_files(cfg: Config) -> List[str]:
    files = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader):
            for ds in _datasets(cfg[loader].get('dataset')):
                if ds.get('ann_file'):
                    files.append(osp.join(ds.get('data_root') or '', ds['ann_file']))
    return sorted(set(files))


def explain_data_error(exc: BaseException, ann_files: List[str] = ()) -> Optional[str]:
    """A one-line explanation for a corrupt image or annotation file, or None if ``exc`` is something else.

    Args:
        exc: The exception raised while building or running the runner.
        ann_files: The config's annotation files, named when one of them cannot be parsed.

    Returns:
        The message, or None.
    """
    import json
    chain: Optional[BaseException] = exc
    while chain is not None:
        if isinstance(chain, UserError):
            return str(chain)
        if isinstance(chain, json.JSONDecodeError) or 'JSONDecodeError' in str(chain):
            bad = [f for f in ann_files if f.endswith('.json') and not _valid_json(f)]
            where = ', '.join(bad) if bad else 'an annotation file'
            return f'{where} is not valid JSON ({chain}); regenerate or re-download it.'
        text = str(chain)
        if 'failed to load image' in text or 'cannot identify image file' in text:
            return (f'{text.strip()}: the image file is missing or corrupt; replace it or remove it from the '
                    'annotations.')
        chain = chain.__cause__ or chain.__context__
    return None


def _valid_json(path: str) -> bool:
    import json
    try:
        with open(path) as f:
            json.load(f)
        return True
    except (OSError, ValueError):
        return False
