"""pytest plugin that runs timm's own model test suite on mmfocal's nine timm models.

``tools/dev/timm_suite.sh`` runs ``tests/test_models.py`` of the installed timm release (from timm's source
distribution, never copied into this repository) with this plugin: every assertion is timm's, only the models
are narrowed to ours.

* ``timm.list_models`` / ``timm.list_pretrained`` return only mmfocal's models, so every test parametrised over
  timm's model lists runs on ours. The ``module`` filter is not applied: timm's suite uses it to name the timm
  modules whose models implement ``forward_intermediates``, and ours (registered from mmfocal's own module) do.
* Tests written for one named timm model (no mmfocal model among their parameters) are deselected.
* The pretrained tests read official-layout files that this plugin writes from randomly initialised models into
  a temporary directory (``pretrained_cfg['file']``): nothing is downloaded.
"""

import os
import shutil
import tempfile
from typing import List

import pytest
import torch

import mmfocal  # noqa: F401  (registers the models when timm is imported)
import timm
from mmfocal.models.timm_models import RELEASED

OURS = frozenset(RELEASED)
_list_models = timm.list_models
_list_pretrained = timm.list_pretrained


def _ours(names: List[str]) -> List[str]:
    return [n for n in names if n.split('.')[0] in OURS]


def list_models(filter='', module='', pretrained=False, exclude_filters='', name_matches_cfg=False,
                include_tags=None) -> List[str]:
    """timm's ``list_models`` narrowed to mmfocal's models (``module`` not applied, see the module docstring)."""
    return _ours(_list_models(filter=filter, pretrained=pretrained, exclude_filters=exclude_filters,
                              name_matches_cfg=name_matches_cfg, include_tags=include_tags))


def list_pretrained(filter='', exclude_filters='') -> List[str]:
    """timm's ``list_pretrained`` narrowed to mmfocal's models."""
    return _ours(_list_pretrained(filter=filter, exclude_filters=exclude_filters))


timm.list_models = list_models
timm.list_pretrained = list_pretrained

_WEIGHTS_DIR = tempfile.mkdtemp(prefix='mmfocal-timm-suite-')


def _write_official_file(name: str, path: str) -> None:
    """An official-layout ImageNet file (``{'model': ...}``, final ``norm.*``) from a randomly initialised model."""
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    state = {('norm.' + k[len('norm3.'):] if k.startswith('norm3.') else k): v for k, v in model.state_dict().items()}
    torch.save({'model': state}, path)


def pytest_configure(config: pytest.Config) -> None:
    from timm.models._registry import _model_pretrained_cfgs
    for tag, cfg in list(_model_pretrained_cfgs.items()):
        name = tag.split('.')[0]
        if name in OURS:
            path = os.path.join(_WEIGHTS_DIR, f'{name}.pth')
            cfg.file = path
            cfg.url = None


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, 'callspec', None), 'params', {})
        name = params.get('model_name')
        (keep if isinstance(name, str) and name.split('.')[0] in OURS else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    wanted = {item.callspec.params['model_name'].split('.')[0] for item in keep
              if 'pretrained' in item.name or 'pretrained' in item.nodeid}
    for name in sorted(wanted):
        path = os.path.join(_WEIGHTS_DIR, f'{name}.pth')
        if not os.path.exists(path):
            _write_official_file(name, path)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_WEIGHTS_DIR, ignore_errors=True)
