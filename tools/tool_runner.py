"""What the runner tools (train.py, test.py) share: their common options, and one ``error:`` line instead of a
traceback for input a user can fix. Application code: the only place that ends the process."""

import argparse
import os
import sys
from typing import Any, Callable, Optional, Tuple

from mmengine.config import Config

from mmfocal.apis.tool_config import UserError, annotation_files, build_runner, explain_data_error

__all__ = ['add_launcher_args', 'run_guarded', 'run_tool']


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """The options every runner tool takes, as mmdet's and mmseg's tools name them.

    Args:
        parser: The tool's parser (``--cfg-options``, ``--launcher`` and ``--local-rank`` are added).
    """
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (e.g. train_cfg.max_epochs=1)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def run_tool(args: argparse.Namespace, prepare: Callable[[argparse.Namespace], Tuple[Config, str]],
             action: Callable[[Any], None]) -> None:
    """Body of a runner tool: prepare the config, build the runner, run ``action`` on it.

    Bad input while preparing or running (missing files, corrupt images or annotations) ends the
    process with one ``error:`` line and exit code 1 instead of a traceback.

    Args:
        args: Parsed arguments (``--local-rank`` becomes ``LOCAL_RANK`` when the launcher did not set it).
        prepare: Turns the arguments into (config, scope); raises :class:`UserError` on bad input.
        action: Called with the built runner, e.g. ``lambda runner: runner.train()``.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    import mmfocal  # noqa: F401  (registers the models, safe checkpoint loading)
    try:
        cfg, scope = prepare(args)
    except (UserError, ValueError, ImportError, FileNotFoundError) as exc:
        sys.exit(f'error: {exc}')
    run_guarded(lambda: action(build_runner(cfg, scope)), cfg)


def run_guarded(fn, cfg: Optional[Config] = None) -> None:
    """Run ``fn``; turn known input problems (missing files, corrupt images or annotations) into one
    ``error:`` line and exit code 1 instead of a traceback.

    Args:
        fn: A callable without arguments.
        cfg: The config, to name its annotation files in messages.
    """
    finished = False
    try:
        fn()
        finished = True
    except (UserError, FileNotFoundError) as exc:
        sys.exit(f'error: {exc}')
    except Exception as exc:  # noqa: BLE001
        message = explain_data_error(exc, annotation_files(cfg) if cfg is not None else [])
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
