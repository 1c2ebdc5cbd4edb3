"""Kernel choices and tuning of the fused focal attention, in one place (read at every call).

Defaults are what the project measures with; tests and users change them through
:func:`attention_settings` rather than module internals.
"""

import contextlib
import dataclasses
import functools
from typing import Any, Iterator, Optional

import torch

__all__ = ['AttentionSettings', 'get_attention_settings', 'attention_settings', 'flash_cpu_op']


@dataclasses.dataclass
class AttentionSettings:
    """Settings of the fused attention.

    Attributes:
        piece_bytes: Bytes of gathered keys, probabilities and their gradients per piece of the CPU
            attention loops (at least one row of windows per piece). Pieces this small reuse the same
            scratch buffers from piece to piece and block to block, where whole-map buffers of hundreds
            of MiB cost as much in fresh-page faults as the attention itself.
        cpu_flash: Use PyTorch's CPU flash-attention op (which returns the log-sum-exp the training
            cores save instead of the probabilities) where this torch build has it; without it they compute
            that log-sum-exp from explicit logits per piece (:func:`~mmfocal.ops.explicit_attention`).
        topk_chunk: Elements of one chunk of the (queries, candidates) distance matrix while Focal-fast
            searches the nearest keys of a map size (bounds that search's memory at large maps).
        geometry_cache_size: Map sizes whose gather tables are kept (least recently used ones go first);
            multi-scale training and test-time sizes vary, so the cache is bounded.
    """

    piece_bytes: int = 16 << 20
    cpu_flash: bool = True
    topk_chunk: int = 1 << 22
    geometry_cache_size: int = 32


_SETTINGS = AttentionSettings()


def get_attention_settings() -> AttentionSettings:
    """The settings in effect."""
    return _SETTINGS


@contextlib.contextmanager
def attention_settings(**changes: Any) -> Iterator[AttentionSettings]:
    """Change :class:`AttentionSettings` fields inside a ``with`` block (process-wide), then restore them.

    Args:
        **changes: Field names and their values, e.g. ``piece_bytes=1`` (one window row per piece).

    Yields:
        The settings in effect inside the block.
    """
    global _SETTINGS
    previous = _SETTINGS
    _SETTINGS = dataclasses.replace(previous, **changes)
    try:
        yield _SETTINGS
    finally:
        _SETTINGS = previous


def flash_cpu_op() -> Optional[Any]:
    """PyTorch's CPU flash-attention op, or None when this build lacks it (torch 2.1) or it is switched off.

    Feature-detected: the op is looked up, not inferred from the torch version.
    """
    if not _SETTINGS.cpu_flash:
        return None
    return _cpu_flash_lookup()


@functools.lru_cache(maxsize=None)
def _cpu_flash_lookup() -> Optional[Any]:
    """The op or None, looked up once per process: on torch 2.1, where the op is missing, each failed lookup
    took 0.57 ms (2026-12-06), and the training loops ask once per piece of windows."""
    return getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu', None)
