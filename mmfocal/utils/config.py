"""Helpers shared by the tools and the tests: config preparation and model building."""

import copy
import warnings
from typing import Any, Optional

import torch.nn as nn
from mmengine.config import Config, ConfigDict

from ..registry import require_scope

__all__ = ['task_of', 'syncbn_to_bn', 'build_model', 'count_parameters']


def task_of(cfg: Config) -> str:
    """Return ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'`` from the config's ``default_scope`` (else a clear error).

    Args:
        cfg: A loaded config.

    Returns:
        The scope name.
    """
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg', 'mmpretrain'):
        raise ValueError(f"{getattr(cfg, 'filename', 'config')}: default_scope={scope!r} is none of 'mmdet' "
                         "(detection), 'mmseg' (segmentation), 'mmpretrain' (classification); inherit an mmdet::, "
                         'mmseg:: or mmpretrain:: runtime base.')
    require_scope(scope)
    return scope


def _replace_syncbn(node: Any) -> int:
    count = 0
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _replace_syncbn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_syncbn(value)
    return count


def syncbn_to_bn(cfg: Config, distributed: bool) -> int:
    """Switch SyncBN to BN in ``cfg.model`` (in place) when not running distributed, with a warning.

    SyncBN is what the paper used on 8 GPUs; in a single process it cannot synchronise and
    PyTorch refuses to run it on CPU.

    Args:
        cfg: A loaded config.
        distributed: Whether a distributed launcher is in use.

    Returns:
        Number of norm configs changed.
    """
    if distributed:
        return 0
    changed = _replace_syncbn(cfg.model)
    if changed:
        warnings.warn(f'{changed} SyncBN layer config(s) switched to BN: this run is not distributed '
                      '(use tools/dist_train.sh for SyncBN across processes).', stacklevel=2)
    return changed


def build_model(cfg: Config, distributed: bool = False) -> nn.Module:
    """Build ``cfg.model`` in its scope's registry (mmfocal's modules registered), reading no weights.

    Args:
        cfg: A loaded config (not modified).
        distributed: Keep SyncBN.

    Returns:
        The model.
    """
    import mmfocal  # noqa: F401  (registers FocalTransformer)
    cfg = copy.deepcopy(cfg)
    scope = task_of(cfg)
    syncbn_to_bn(cfg, distributed)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    elif scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
        from mmpretrain.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmengine.registry import DefaultScope
    model = cfg.model if isinstance(cfg.model, ConfigDict) else ConfigDict(cfg.model)
    if cfg.get('data_preprocessor') is not None:  # as mmengine's Runner does (mmpretrain's configs keep it there)
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(model)


def count_parameters(model: nn.Module, module: Optional[str] = None) -> int:
    """Number of parameters of ``model`` (or of its sub-module ``module``)."""
    target = getattr(model, module) if module else model
    return sum(p.numel() for p in target.parameters())
