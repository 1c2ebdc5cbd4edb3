"""Let ``torch.load(weights_only=True)`` (the default since torch 2.6) read mmengine checkpoints.

mmengine 0.10.7 saves its ``MessageHub`` (``HistoryBuffer`` objects holding numpy arrays and
bound methods) inside every checkpoint, so resume, ``load_from`` and ``test.py CHECKPOINT`` fail
under torch >= 2.6 with ``UnpicklingError``. We keep ``weights_only`` safety and allow-list exactly
those objects. ``builtins.getattr`` is not allowed in general: it is mapped to a function that only
returns the registered statistics methods of a ``HistoryBuffer`` (what mmengine pickles).
"""

import pickle
from typing import Any, List

import numpy as np
import torch

__all__ = ['register_safe_globals', 'history_buffer_getattr']

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


def register_safe_globals() -> None:
    """Allow-list the objects found in mmengine checkpoints for ``weights_only`` loading (idempotent)."""
    global _REGISTERED
    if _REGISTERED or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    from mmengine.logging import HistoryBuffer
    torch.serialization.add_safe_globals(
        [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr'),
         (history_buffer_getattr, '__builtin__.getattr')] + _numpy_globals())
    _REGISTERED = True
