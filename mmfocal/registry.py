"""Registration of mmfocal's modules into the mmdet, mmseg and mmpretrain ``MODELS`` registries.

Each library is optional: with only one installed, the other is skipped and
:func:`require_scope` explains what to install when a config asks for it.
"""

import importlib
from typing import Dict, List, Optional, Sequence, Type

__all__ = ['register_models', 'require_scope', 'REGISTERED_SCOPES', 'MISSING_SCOPES']

# scope -> pip requirement that provides it
_SCOPES = {'mmdet': 'mmdet==3.3.0', 'mmseg': 'mmsegmentation==1.2.2', 'mmpretrain': 'mmpretrain==1.2.0'}
REGISTERED_SCOPES: List[str] = []
MISSING_SCOPES: Dict[str, str] = {}


def _registry(scope: str, name: str):
    return getattr(importlib.import_module(f'{scope}.registry'), name)


def register_models(classes: List[Type], scopes: Sequence[str] = tuple(_SCOPES), registry: str = 'MODELS') -> None:
    """Register ``classes`` in ``registry`` of every available scope in ``scopes`` (idempotent).

    Args:
        classes: Classes to register under their class names.
        scopes: Which libraries' registries (``'mmdet'``, ``'mmseg'``, ``'mmpretrain'``).
        registry: Registry name in ``<scope>.registry`` (``'MODELS'``, ``'TASK_UTILS'``).
    """
    for scope in scopes:
        try:
            registry_obj = _registry(scope, registry)
        except ImportError as exc:
            MISSING_SCOPES[scope] = str(exc)
            continue
        for cls in classes:
            if registry_obj.get(cls.__name__) is not cls:
                registry_obj.register_module(module=cls, force=True)
        if scope not in REGISTERED_SCOPES:
            REGISTERED_SCOPES.append(scope)


def require_scope(scope: Optional[str]) -> None:
    """Raise a clear error if ``scope`` (``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``) is not installed.

    Args:
        scope: The config's ``default_scope``.
    """
    if scope not in _SCOPES:
        raise ValueError(f"default_scope={scope!r}: mmfocal supports 'mmdet' (detection), 'mmseg' "
                         "(segmentation) and 'mmpretrain' (classification) configs.")
    if scope not in REGISTERED_SCOPES:
        raise ImportError(f'This config needs {scope}, which is not importable here ({MISSING_SCOPES.get(scope)}); '
                          f'install it with `pip install {_SCOPES[scope]}` (see docs/install.md).')
