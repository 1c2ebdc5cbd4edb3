"""Reused CPU buffers of the attention loops, and how those loops are cut into pieces.

Buffers of tens of MiB come from fresh ``mmap`` pages on every allocation with glibc's malloc, and the page
faults cost as much as the copy itself; pieces of :attr:`~mmfocal.ops.settings.AttentionSettings.piece_bytes`
stay in cache and reuse the same buffers from piece to piece and block to block.
"""

import contextlib
import math
import threading
from typing import Dict, Iterator, List, Sequence

import torch

from .settings import get_attention_settings

__all__ = ['ScratchBuffers', 'scratch', 'pieces', 'gather_rows', 'scatter_add_rows']


class ScratchBuffers(threading.local):
    """Per-thread reusable CPU buffers for the transient tensors of the attention loops.

    Other devices have caching allocators and get a fresh tensor. A backbone forward runs inside
    :meth:`forward_scope`; a training forward keeps the buffers for its backward pass
    (:meth:`keep_until_backward`), which gathers keys again and needs buffers of the same sizes. Nothing a
    backward reads is kept in a buffer (every buffer is written before it is read), so another forward in
    between (a teacher model, say) may reuse or free them.
    """

    def __init__(self) -> None:
        self.buffers: Dict[tuple, torch.Tensor] = {}
        self.release_hooked = False

    @property
    def nbytes(self) -> int:
        """Bytes this thread holds."""
        return sum(b.numel() * b.element_size() for b in self.buffers.values())

    def get(self, name: str, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """A buffer of ``shape`` for a transient tensor (never one autograd saves).

        Args:
            name: Which transient (buffers of one name are reused, growing when needed).
            shape: Shape wanted.
            like: Tensor whose dtype and device the buffer takes.

        Returns:
            A view of the reused buffer (CPU) or a fresh tensor (other devices).
        """
        if like.device.type != 'cpu':
            return like.new_empty(shape)
        numel = math.prod(shape)
        buf = self.buffers.get((name, like.dtype))
        if buf is None or buf.numel() < numel:
            buf = self.buffers[(name, like.dtype)] = like.new_empty(numel)
        return buf[:numel].view(*shape)

    def release(self) -> None:
        """Free this thread's buffers."""
        self.buffers = {}

    def keep_until_backward(self, tensor: torch.Tensor) -> None:
        """Keep the buffers of this forward for its backward pass, then free them.

        Called by every autograd attention with one of its inputs that needs a gradient; the first of a
        backbone forward hooks it: its gradient is complete only after every later attention's backward
        has run.
        """
        if not self.release_hooked:
            tensor.register_hook(lambda grad: self.release())
            self.release_hooked = True

    @contextlib.contextmanager
    def forward_scope(self) -> Iterator[None]:
        """Bracket one backbone forward: afterwards the buffers are freed unless a backward will use them.

        A forward that raises frees them too, so nothing is held after an error.
        """
        self.release_hooked = False
        try:
            yield
        except BaseException:
            self.release()
            self.release_hooked = False
            raise
        if not self.release_hooked:
            self.release()


scratch = ScratchBuffers()


def pieces(n: int, unit_bytes: int, device: torch.device) -> List[slice]:
    """The one piece policy of the attention loops: consecutive slices of ``n`` units, sizes differing by at most one.

    A unit is what a loop gathers at once (a row of windows, or one window); on CPU each piece holds as many
    units as fit in ``AttentionSettings.piece_bytes`` (at least one), on other devices (caching allocators,
    and fewer kernel launches are better) there is one piece.

    Args:
        n: Number of units.
        unit_bytes: Bytes of gathered keys, biases, probabilities and gradients per unit.
        device: Where the loop runs.
    """
    if device.type != 'cpu':
        return [slice(0, n)]
    step = max(1, get_attention_settings().piece_bytes // max(1, unit_bytes))
    count = math.ceil(n / step)
    size, larger = divmod(n, count)  # the first `larger` pieces hold one unit more
    bounds = [0]
    for i in range(count):
        bounds.append(bounds[-1] + size + (i < larger))
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def gather_rows(rows: torch.Tensor, index: torch.Tensor, name: str) -> torch.Tensor:
    """``rows[index]`` of a (T, R) table into the reused buffer ``name``: (len(index), R).

    Key/value sources hold one long row per token (keys and values of all heads), so the gather copies
    long rows, much faster than gathering per head.
    """
    return torch.index_select(rows, 0, index, out=scratch.get(name, (index.numel(), rows.shape[1]), rows))


def scatter_add_rows(dst: torch.Tensor, index: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``dst[index[i]] += rows[i]`` for a (T, R) ``dst`` and (len(index), R) ``rows``, in place; returns ``dst``.

    The same sums, bit for bit, as ``dst.index_add_(0, index, rows)``, which on CPU first expands the index
    into a (len(index), R) int64 copy. Both take ~3.3 ms for the key gradients of a stage-1 piece at 800x1333
    on an idle 2-core machine; with one core busy elsewhere (data loaders, a second job) this one took 5.6 ms
    and ``index_add_`` 10.9 ms, under a full second job 4.3 and 45 ms (means of 20 calls, one run per load,
    2026-12-04).
    """
    return dst.scatter_add_(0, index.view(-1, 1).expand(-1, rows.shape[1]), rows)
