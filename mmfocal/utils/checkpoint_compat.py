"""Safe loading of mmengine checkpoints on every supported torch.

mmengine 0.10.7 saves its ``MessageHub`` (``HistoryBuffer`` objects holding numpy arrays and
bound methods) inside every checkpoint, so resume, ``load_from`` and ``test.py CHECKPOINT`` fail
under torch >= 2.6 (``weights_only=True`` by default) with ``UnpicklingError``. We keep
``weights_only`` safety and allow-list exactly those objects. ``builtins.getattr`` is not allowed in
general: it is mapped to a function that only returns the registered statistics methods of a
``HistoryBuffer`` (what mmengine pickles).

Torch releases without ``torch.serialization.add_safe_globals`` (2.1) cannot extend their
``weights_only`` allow-list, and load pickled code by default. :func:`safe_torch_load` gives our
own loaders the same guarantee there: a standard unpickler whose ``find_class`` only returns the
globals torch's ``weights_only`` unpickler allows plus the mmengine ones above, so a checkpoint
that names any other callable is refused before anything runs.
"""

import _compat_pickle
import functools
import os
import pickle
import types
from typing import Any, Dict, List, Tuple, Union

import torch

__all__ = ['register_safe_globals', 'history_buffer_getattr', 'safe_torch_load']

_REGISTERED = False
# HistoryBuffer fills its statistics registry lazily, so the defaults are named here.
_DEFAULT_STATISTICS = {'min', 'max', 'mean', 'current'}


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """Restricted ``getattr`` for unpickling: only ``HistoryBuffer`` statistics methods.

    mmengine pickles ``HistoryBuffer._statistics_methods`` as ``getattr(HistoryBuffer, 'min')`` etc.

    Args:
        obj: The object (or class) whose attribute the checkpoint asks for.
        name: Attribute name.

    Returns:
        The statistics method.
    """
    from mmengine.logging import HistoryBuffer
    owner = obj if isinstance(obj, type) else type(obj)
    allowed = _DEFAULT_STATISTICS | set(HistoryBuffer._statistics_methods)
    if issubclass(owner, HistoryBuffer) and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}); mmfocal only '
        'allows the statistics methods of mmengine HistoryBuffer objects.')


def _numpy_globals() -> List[Any]:
    """numpy objects that pickled arrays and scalars reference (numpy 1.x and 2.x names)."""
    try:
        import numpy as np
    except ImportError:  # numpy is optional for torch; a checkpoint without arrays needs none of this
        return []
    objs: List[Any] = [np.ndarray, np.dtype]
    for mod_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct', 'scalar'])
        except ImportError:  # pragma: no cover - depends on the numpy version
            continue
        objs += [(mod._reconstruct, f'{mod_name}._reconstruct'), (mod.scalar, f'{mod_name}.scalar')]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float64DType', 'Float32DType', 'Float16DType', 'Int64DType', 'Int32DType', 'Int16DType',
                     'Int8DType', 'UInt8DType', 'BoolDType'):
            if hasattr(dtypes, name):
                objs.append(getattr(dtypes, name))
    return objs


def _mmengine_globals() -> List[Any]:
    """Everything mmengine checkpoints reference beyond tensors: objects or ``(object, 'module.name')``.

    Without mmengine installed only the numpy objects: no checkpoint read there can hold mmengine's objects
    that anything could use.
    """
    try:
        from mmengine.logging import HistoryBuffer
    except ImportError:
        return _numpy_globals()
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr'),
            (history_buffer_getattr, '__builtin__.getattr')] + _numpy_globals()


def register_safe_globals() -> None:
    """Allow-list the objects found in mmengine checkpoints for ``weights_only`` loading (idempotent).

    Called on the first safe load and when mmengine is imported (:mod:`mmfocal.registry`), so that mmengine's
    own ``torch.load`` of a resumed run reads its message hub; importing mmfocal alone imports nothing for it.
    """
    global _REGISTERED
    if _REGISTERED or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    torch.serialization.add_safe_globals(_mmengine_globals())
    _REGISTERED = True


@functools.lru_cache(maxsize=None)
def _restricted_pickle_module() -> types.ModuleType:
    """A ``pickle``-like module whose unpickler resolves only allow-listed globals (torch without
    ``add_safe_globals``)."""
    from torch._weights_only_unpickler import _get_allowed_globals
    allowed: Dict[Tuple[str, str], Any] = {}
    for full_name, obj in _get_allowed_globals().items():
        module, _, name = full_name.rpartition('.')
        allowed[(module, name)] = obj
    import _codecs
    # What plain containers pickle through REDUCE at torch.save's protocol 2 (torch >= 2.4 allows them too).
    for obj, full_name in ((set, 'builtins.set'), (frozenset, 'builtins.frozenset'), (bytearray, 'builtins.bytearray'),
                           (_codecs.encode, '_codecs.encode')):
        allowed.setdefault(tuple(full_name.rsplit('.', 1)), obj)
    for entry in _mmengine_globals():
        obj, full_name = entry if isinstance(entry, tuple) else (entry, f'{entry.__module__}.{entry.__qualname__}')
        module, _, name = full_name.rpartition('.')
        allowed[(module, name)] = obj

    class RestrictedUnpickler(pickle.Unpickler):
        """Resolves a global only when it is on the allow-list; everything else is refused."""

        def find_class(self, module: str, name: str) -> Any:
            # Protocol 2 (torch.save's) writes Python 2 names; pickle's own find_class maps them the same way.
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            try:
                return allowed[(module, name)]
            except KeyError:
                raise pickle.UnpicklingError(
                    f'checkpoint refers to {module}.{name}, which a weights-only load does not allow; '
                    'only tensors, containers, numpy arrays and mmengine logging objects are read.') from None

    def load(file: Any, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()

    module = types.ModuleType('mmfocal_restricted_pickle')
    module.Unpickler = RestrictedUnpickler
    module.load = load
    module.__name__ = 'mmfocal_restricted_pickle'
    return module


def safe_torch_load(f: Union[str, os.PathLike, Any], map_location: Any = 'cpu', mmap: bool = False) -> Any:
    """``torch.load`` that never runs pickled code, on every supported torch.

    With ``add_safe_globals`` (torch >= 2.4) this is ``weights_only=True`` with the mmengine objects
    allow-listed; without it, a restricted unpickler with the same allow-list.

    Args:
        f: Path or file-like object.
        map_location: Passed to ``torch.load``.
        mmap: Memory-map the file (local zip checkpoints only).

    Returns:
        The object stored in the checkpoint.

    Raises:
        pickle.UnpicklingError: The checkpoint references a global outside the allow-list.
    """
    if hasattr(torch.serialization, 'add_safe_globals'):
        register_safe_globals()
        return torch.load(f, map_location=map_location, weights_only=True, mmap=mmap)
    return torch.load(f, map_location=map_location, weights_only=False, mmap=mmap,
                      pickle_module=_restricted_pickle_module())
