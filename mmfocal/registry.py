"""mmfocal's faces in other libraries, registered when (and only when) that library is imported.

``import mmfocal`` imports none of mmdet, mmseg, mmpretrain, mmcv, mmengine or timm. Instead each face is tied to
a module of its library:

==================== ====================================================================================
``mmdet.registry``   ``FocalTransformer`` / ``FocalTransformerV2`` / ``FocalNet`` in mmdet's ``MODELS``
``mmdet.models``     RepPoints V2's head, BiFPN neck, losses (``MODELS``) and assigners (``TASK_UTILS``)
``mmseg.registry``   the three backbones in mmseg's ``MODELS``
``mmpretrain.registry`` the three backbones in mmpretrain's ``MODELS``
``timm``             the nine released ImageNet models (``timm.list_models('focal*')``)
``mmengine``         the objects of mmengine checkpoints allow-listed for torch's ``weights_only`` loader
``torch._dynamo``    the backbones' geometry step marked to run outside ``torch.compile``'s traces
==================== ====================================================================================

A module already imported when mmfocal is gets its face at once; any other gets it right after it has been
imported, by a finder on ``sys.meta_path`` that wraps the module's loader for that one import. So
``custom_imports=dict(imports=['mmfocal'])``, ``import mmfocal`` before or after ``from mmdet.registry import
MODELS`` all end with the classes registered. The registered backbones are the model core's classes themselves:
they already speak what mmengine's runners call (``init_weights`` with ``init_cfg``, ``train`` keeping frozen
stages, ``load_state_dict`` through the checkpoint pre-hook), so no wrapper class stands between.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import warnings
from types import ModuleType
from typing import Callable, Dict, List, Optional, Sequence, Type

__all__ = ['register_models', 'require_scope', 'install_import_hooks', 'REGISTERED_SCOPES', 'MISSING_SCOPES']

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

    Importing the scope's registry here registers mmfocal's backbones in it (the import hook).

    Args:
        scope: The config's ``default_scope``.
    """
    if scope not in _SCOPES:
        raise ValueError(f"default_scope={scope!r}: mmfocal supports 'mmdet' (detection), 'mmseg' "
                         "(segmentation) and 'mmpretrain' (classification) configs.")
    if scope not in REGISTERED_SCOPES:
        try:
            importlib.import_module(f'{scope}.registry')
        except ImportError as exc:
            MISSING_SCOPES[scope] = str(exc)
    if scope not in REGISTERED_SCOPES:
        raise ImportError(f'This config needs {scope}, which is not importable here ({MISSING_SCOPES.get(scope)}); '
                          f'install it with `pip install {_SCOPES[scope]}` (see docs/install.md).')


# --- the faces ---------------------------------------------------------------------------------

def _backbones(scope: str) -> Callable[[], None]:
    def register() -> None:
        from .models.backbones import FocalNet, FocalTransformer, FocalTransformerV2
        register_models([FocalTransformer, FocalTransformerV2, FocalNet], scopes=(scope, ))

    return register


def _reppoints_v2() -> None:
    try:
        from .models.dense_heads import RepPointsV2Head
        from .models.losses import LegacyGIoULoss, SEPFocalLoss
        from .models.necks import RPDBiFPN
        from .models.task_modules import ATSSAssignerV2, CornerHeatmapAssigner, PointAssignerV2
    except ImportError as exc:  # mmdet is there, so something it needs (mmcv's ops) is broken
        warnings.warn(f'mmfocal: RepPointsV2Head is unavailable because an import failed ({exc}); it needs mmdet '
                      '3.3 and mmcv 2.1 with ops (see docs/install.md).', stacklevel=2)
        return
    register_models([RepPointsV2Head, RPDBiFPN, SEPFocalLoss, LegacyGIoULoss], scopes=('mmdet', ))
    register_models([CornerHeatmapAssigner, PointAssignerV2, ATSSAssignerV2], scopes=('mmdet', ), registry='TASK_UTILS')


def _timm_models() -> None:
    from .models import timm_models  # noqa: F401  (registers on import)


def _eager_geometry() -> None:
    from .models.backbones.focal_base import mark_eager_under_dynamo
    mark_eager_under_dynamo()


def _safe_globals() -> None:
    from .utils.checkpoint_compat import register_safe_globals
    register_safe_globals()


# module -> what to do once it has been imported (in this order)
_FACES: Dict[str, List[Callable[[], None]]] = {
    'mmengine': [_safe_globals],
    'mmdet.registry': [_backbones('mmdet')],
    'mmdet.models': [_reppoints_v2],
    'mmseg.registry': [_backbones('mmseg')],
    'mmpretrain.registry': [_backbones('mmpretrain')],
    'timm': [_timm_models],
    'torch._dynamo': [_eager_geometry],
}
_pending: Dict[str, List[Callable[[], None]]] = {}
_lock = threading.RLock()


def _run(name: str) -> None:
    with _lock:
        actions = _pending.pop(name, [])
    for action in actions:
        try:
            action()
        except Exception as exc:  # a face that fails must not fail the user's import of the library
            warnings.warn(f'mmfocal: registering into {name} failed: {type(exc).__name__}: {exc}', stacklevel=2)


class _LoaderAfterwards(importlib.abc.Loader):
    """The module's own loader, plus mmfocal's registration once the module has executed."""

    def __init__(self, loader: importlib.abc.Loader, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # the module keeps its real loader (importlib.resources, pkgutil and linecache read it)
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _run(self._name)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a module with pending faces, wraps the loader the other finders return."""

    def find_spec(self, fullname: str, path=None, target=None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in _pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, 'exec_module'):
            spec.loader = _LoaderAfterwards(spec.loader, fullname)
        return spec


_FINDER = _AfterImportFinder()
_installed = False


def install_import_hooks() -> None:
    """Give every library its face now if it is imported, else right after its import (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        for name, actions in _FACES.items():
            _pending[name] = list(actions)
        sys.meta_path.insert(0, _FINDER)
    for name in _FACES:
        if name in sys.modules:
            _run(name)
