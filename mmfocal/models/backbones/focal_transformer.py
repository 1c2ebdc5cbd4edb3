"""Focal Transformer backbone for dense prediction.

Paper: Yang et al., "Focal Self-attention for Local-Global Interactions in Vision Transformers",
NeurIPS 2021 (arXiv 2107.00641). Original code (ImageNet classification only):
https://github.com/microsoft/Focal-Transformer, ``classification/focal_transformer.py`` ("v1").

What is the same as the official v1 model: every parameter and its name, the focal attention
(window tokens + the cyclic expand ring + fc-pooled sub-windows with the -100 border mask, three
relative-position bias tables), zero padding after LN1 that is *not* masked, floor-ing downsample
convolutions. Same weights and same input give the same stage features.

What we changed for detection and segmentation:

* No size fixed at construction: padding, window counts, gather indices and masks are derived
  from the tensor in ``forward`` (indices cached per size). The official construction rule that
  shrinks the window and disables the expand ring on small maps is replaced by explicit per-stage
  ``expand_sizes``; ``(3, 3, 3, 0)`` is the layout of the released 224 checkpoints.
* The plain stem pads the image to a multiple of 4 (the official model asserts the size).
* One output LayerNorm ``norm{i}`` per ``out_indices`` entry, NCHW outputs (mmdet Swin style).
* The attention gathers all keys of a window (window, ring, pooled) with one precomputed index and
  runs one fused attention over them instead of materialising rolled copies (``attn_impl='fast'``):
  ``scaled_dot_product_attention`` without autograd; in training a custom autograd function from the
  qkv projections to the output that saves the key sources rather than the gathered keys (and, on
  CPU, the log-sum-exp of PyTorch's flash kernel rather than the probabilities) and gathers again in
  backward. Ring keys that the official rolls read twice are one key with the ``logaddexp`` of their
  biases (same softmax). On CPU the attention runs in pieces of window rows with reused buffers.
  ``attn_impl='reference'`` keeps the official roll/unfold formulation (also used for attention
  dropout > 0, which no released model has).
"""

import os
import threading
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import DropPath
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from ...utils.torch_compat import register_load_state_dict_pre_hook
from .focal_checkpoint import (CheckpointMismatchError, adapt_state_dict, load_checkpoint_file,
                               official_checkpoint_url, official_to_mmfocal, summarize_keys)

__all__ = ['FocalTransformer', 'FocalAttention', 'FocalBlock', 'FocalStage', 'FocalPatchEmbed']

# Additive mask value of the official code (Swin convention); finite, so fp16/bf16 stay finite.
MASK_VALUE = -100.0


# ----------------------------------------------------------------------------------------------
# Index helpers. All of them depend only on (window, expand, focal window) or on the map size.
# ----------------------------------------------------------------------------------------------

def _ring_parts(window_size: int, expand_size: int) -> List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per official rolled copy: source rows, source cols and the kept mask over the s*s window positions.

    The official code reads four cyclically rolled copies of the key map with source offsets
    (+e,+e), (+e,-e), (-e,+e), (-e,-e) and keeps the tokens whose source falls outside the window.
    """
    s, e = window_size, expand_size
    r, c = torch.meshgrid(torch.arange(s), torch.arange(s), indexing='ij')
    r, c = r.flatten(), c.flatten()
    parts = []
    for dr, dc in ((e, e), (e, -e), (-e, e), (-e, -e)):
        rr, cc = r + dr, c + dc
        parts.append((rr, cc, (rr < 0) | (rr >= s) | (cc < 0) | (cc >= s)))
    return parts


def expand_ring_offsets(window_size: int, expand_size: int) -> torch.Tensor:
    """Window-local source positions of the expand-ring keys, in official key order.

    Args:
        window_size: Window side ``s``.
        expand_size: Ring width ``e`` (> 0).

    Returns:
        Long tensor (4 * (s^2 - (s-e)^2), 2) of (row, col) source offsets relative to the window's
        top-left corner; they may be negative or >= s (the ring).
    """
    parts = _ring_parts(window_size, expand_size)
    return torch.cat([torch.stack([rr[keep], cc[keep]], dim=1) for rr, cc, keep in parts], dim=0)


def expand_ring_valid_index(window_size: int, expand_size: int) -> torch.Tensor:
    """Official ``valid_ind_rolled``: kept positions in the concatenation of the four rolled windows.

    Args:
        window_size: Window side ``s``.
        expand_size: Ring width ``e`` (> 0).

    Returns:
        Long tensor of indices ``part * s^2 + r * s + c``.
    """
    return torch.cat([keep for _, _, keep in _ring_parts(window_size, expand_size)]).nonzero().flatten()


def ring_duplicates(offsets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ring keys read from the same source position, merged into one key each.

    The four rolled copies overlap: with s=7, e=3, 12 of the 132 ring offsets repeat one another.
    A key counted twice with biases b1, b2 contributes exp(q.k + b1) + exp(q.k + b2) to the softmax,
    which is one key with bias logaddexp(b1, b2): same attention, 5-7% fewer keys per window.

    Args:
        offsets: (R, 2) ring offsets in official key order.

    Returns:
        first (U,): the first ring key of each distinct offset, in key order; slots (D,) and
        repeats (D,): for every further key with an offset already seen, the merged key it joins
        (a position in ``first``) and its own ring position.
    """
    first, slots, repeats, seen = [], [], [], {}
    for j, (r, c) in enumerate(offsets.tolist()):
        if (r, c) in seen:
            slots.append(seen[(r, c)])
            repeats.append(j)
        else:
            seen[(r, c)] = len(first)
            first.append(j)
    return torch.tensor(first), torch.tensor(slots, dtype=torch.long), torch.tensor(repeats, dtype=torch.long)


def relative_position_index(q_size: int, k_size: int) -> torch.Tensor:
    """Index into a ((q+k-1)^2)-entry bias table for a q×q query grid against a k×k key grid.

    ``index = (qr - kr + k - 1) * (q + k - 1) + (qc - kc + k - 1)``; with q == k this is Swin's
    table index, with k = focal window it is the official pooled-level index (which mixes token
    and window coordinates on purpose).

    Args:
        q_size: Query grid side.
        k_size: Key grid side.

    Returns:
        Long tensor (q_size^2, k_size^2).
    """
    qr, qc = torch.meshgrid(torch.arange(q_size), torch.arange(q_size), indexing='ij')
    kr, kc = torch.meshgrid(torch.arange(k_size), torch.arange(k_size), indexing='ij')
    dr = qr.flatten()[:, None] - kr.flatten()[None, :] + k_size - 1
    dc = qc.flatten()[:, None] - kc.flatten()[None, :] + k_size - 1
    return dr * (q_size + k_size - 1) + dc


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nWh * nWw, s*s, C), windows and tokens in row-major order."""
    b, h, w, c = x.shape
    s = window_size
    x = x.view(b, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // s) * (w // s), s * s, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """(B, nW, s*s, C) -> (B, H, W, C), the inverse of :func:`window_partition`."""
    b, _, _, c = windows.shape
    s = window_size
    x = windows.view(b, h // s, w // s, s, s, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


# ----------------------------------------------------------------------------------------------
# Fast attention core
# ----------------------------------------------------------------------------------------------

_scratch_local = threading.local()


def _scratch(name: str, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """A reusable CPU buffer for a transient tensor (never one autograd saves).

    Buffers of tens of MiB come from fresh ``mmap`` pages on every allocation with glibc's malloc, and
    the page faults cost as much as the copy itself (measured: a 45 MiB gather 37 ms into a fresh
    tensor, 6 ms into a reused one). Other devices have caching allocators and get a fresh tensor.
    """
    if like.device.type != 'cpu':
        return like.new_empty(shape)
    cache = getattr(_scratch_local, 'buffers', None)
    if cache is None:
        cache = _scratch_local.buffers = {}
    numel = 1
    for n in shape:
        numel *= n
    buf = cache.get((name, like.dtype))
    if buf is None or buf.numel() < numel:
        buf = cache[(name, like.dtype)] = like.new_empty(numel)
    return buf[:numel].view(*shape)


def release_scratch() -> None:
    """Free this thread's attention scratch buffers.

    The backbone does it at the end of a forward without autograd attention, and otherwise when the
    backward pass is through the first attention that will need them again (:func:`_release_after_backward`).
    """
    _scratch_local.buffers = {}


def _release_after_backward(tensor: torch.Tensor) -> None:
    """Keep the scratch buffers from this forward for its backward pass, then free them.

    The backward pass gathers keys again and needs buffers of the same sizes: keeping them saves a
    second allocation of fresh pages (in one A/B run at 512x512 batch 2 the training step went from
    1.54x to 1.35x Swin-T's time). Called by every autograd attention with one of its inputs that
    needs a gradient; the first of a backbone forward hooks it: its gradient is complete only after
    every later attention's backward has run.
    """
    if not getattr(_scratch_local, 'release_hooked', False):
        tensor.register_hook(lambda grad: release_scratch())
        _scratch_local.release_hooked = True


# Bytes of gathered keys, probabilities and their gradients per piece of the CPU attention loops.
# Pieces this small reuse the same scratch buffers from piece to piece and block to block, where
# whole-map buffers of hundreds of MiB cost as much in fresh-page faults as the attention itself.
_CHUNK_BYTES = 16 << 20


def _window_chunks(q: torch.Tensor, n_keys: int, grid: Tuple[int, int]) -> List[Tuple[int, slice]]:
    """The pieces of the attention loops: (image, slice of window rows) pairs.

    On CPU a piece holds whole rows of windows, as many as fit in ``_CHUNK_BYTES`` (at least one);
    on other devices (caching allocators, and fewer kernel launches are better) one piece per image.
    """
    b, h, nw, s2, e = q.shape
    nwh, nww = grid
    rows = nwh
    if q.device.type == 'cpu':
        row_bytes = nww * h * n_keys * (4 * e + 2 * s2) * q.element_size()
        rows = max(1, min(nwh, _CHUNK_BYTES // row_bytes))
    return [(i, slice(r, min(nwh, r + rows))) for i in range(b) for r in range(0, nwh, rows)]


def _window_slice(rows: slice, nww: int) -> slice:
    """The flat window indices of a slice of window rows."""
    return slice(rows.start * nww, rows.stop * nww)


def _gather_windows(src: torch.Tensor, index: torch.Tensor, image: int, windows: slice,
                    n_keys: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Keys and values of some windows of one image for the fused kernels, (nWc, h, N, e) each.

    Sources are (B, T, 2, h, e): one row per source token with the keys and values of all heads, so
    the gather copies long rows, 2.7x faster than gathering per head (stage 1 at 224x224 batch 8:
    5.5 vs 14.8 ms); the fused kernels take the strided (windows, heads, keys, e) views as they are.
    """
    rows = src[image].view(src.shape[1], -1)
    idx = index.view(-1, n_keys)[windows].reshape(-1)
    kv = torch.index_select(rows, 0, idx, out=_scratch('kv', (idx.numel(), rows.shape[1]), src))
    kv = kv.view(-1, n_keys, *src.shape[2:])  # (nWc, N, 2, h, e)
    return kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)


def _gather_kv(src: torch.Tensor, index: torch.Tensor, n_keys: int) -> torch.Tensor:
    """Every key of every window as contiguous matrices: (B, T, 2, h, e) -> (2, B, h, nW, N, e).

    Gathered by token rows, then laid out head-major: ``index_select`` along an inner dimension
    first copies its whole source (measured in backward: 2.9 ms of copying for a 0.3 ms gather).
    """
    b, n_src, two, h, e = src.shape
    rows = src.view(b, n_src, -1).index_select(1, index)
    return rows.view(b, -1, n_keys, two, h, e).permute(3, 0, 4, 1, 2, 5).contiguous()


def _accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """Softmax / log-sum-exp precision: fp32 for fp16 and bf16, otherwise the tensors' own dtype."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _flash_cpu_op() -> Optional[object]:
    """PyTorch's CPU flash-attention op, which also returns the log-sum-exp (None if this build lacks it)."""
    return getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu', None)


class _Geometry(NamedTuple):
    """Shapes and gather tables of one fast attention call (all derived from the padded map size)."""

    grid: Tuple[int, int]  # windows (nWh, nWw)
    window: int  # window side s
    heads: int
    head_dims: int  # d
    channels: int  # e: d, plus one border-mask channel when the pooled grid is zero-padded
    pad: int  # zero padding p of the pooled grid
    n_keys: int  # keys per window N
    index: torch.Tensor  # (nW * N,) source of every key of every window
    mask: Optional[torch.Tensor]  # (T,) 0 / -100 per source token, or None
    scale: float


def _pack(qkv: torch.Tensor, kv_pooled: Optional[torch.Tensor], g: _Geometry) -> Tuple[torch.Tensor, torch.Tensor]:
    """Queries by window and the key/value sources of one attention call.

    Args:
        qkv: (B, Hp, Wp, 3C) projections of the padded map.
        kv_pooled: (B, nWh, nWw, 2C) key/value projections of the pooled tokens, or None.
        g: The call's geometry.

    Returns:
        q (B, h, nW, s2, e) head-major, so the kernels see (windows, heads) batches of matrices, and
        sources (B, T, 2, h, e): the Hp*Wp tokens then the zero-padded pooled grid, keys and values of
        all heads in one row per token. The border mask varies per window while the position bias
        is shared by all windows: it rides along as the extra channel e of the sources against a
        query channel of 1/scale, so q.k * scale adds it exactly.
    """
    b, hp, wp, _ = qkv.shape
    (nwh, nww), s, h, d, e, p = g.grid, g.window, g.heads, g.head_dims, g.channels, g.pad
    n_fine = hp * wp
    qkv = qkv.view(b, nwh, s, nww, s, 3, h, d)
    q = qkv.new_empty(b, h, nwh, nww, s, s, e)
    q[..., :d] = qkv[..., 0, :, :].permute(0, 5, 1, 3, 2, 4, 6)
    n_src = n_fine + (0 if kv_pooled is None else (nwh + 2 * p) * (nww + 2 * p))
    src = qkv.new_empty(b, n_src, 2, h, e)
    src[:, :n_fine, :, :, :d] = qkv.view(b, n_fine, 3, h, d)[:, :, 1:]
    if kv_pooled is not None:
        src[:, n_fine:, :, :, :d] = F.pad(kv_pooled, (0, 0, p, p, p, p)).view(b, -1, 2, h, d)
    if e > d:
        q[..., d] = 1. / g.scale
        src[..., d] = g.mask.to(src.dtype)[:, None, None]  # v's copy of it only reaches a dropped channel
    return q.view(b, h, nwh * nww, s * s, e), src


def _fused_attention(q: torch.Tensor, src: torch.Tensor, bias: torch.Tensor, g: _Geometry,
                     lse: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Attention through a fused kernel, piece by piece: no (windows, heads, s2, N) logits are stored.

    Without ``lse``, ``scaled_dot_product_attention`` (on CPU its flash kernel for these strided
    (windows, heads) views: 2x faster than matmul + softmax at stage 1, measured); with it, PyTorch's
    CPU flash op, whose log-sum-exp is written into ``lse`` (B, h, nW, s2) for the backward pass.

    Args:
        q: (B, h, nW, s2, e) queries; src: (B, T, 2, h, e) key/value sources (see :func:`_pack`).
        bias: (1, h, s2, N) position bias shared by all windows.
        g: The call's geometry.
        lse: Output buffer for the log-sum-exp, or None.

    Returns:
        (B, Hp, Wp, C) attention output.
    """
    b, h = q.shape[:2]
    (nwh, nww), s, d = g.grid, g.window, g.head_dims
    out = q.new_empty(b, nwh, s, nww, s, h, d)
    for i, window_rows in _window_chunks(q, g.n_keys, g.grid):
        w = _window_slice(window_rows, nww)
        k, v = _gather_windows(src, g.index, i, w, g.n_keys)
        q_c = q[i, :, w].transpose(0, 1)  # (nWc, h, s2, e), as are k, v (N keys) and the output
        if lse is None:
            o = F.scaled_dot_product_attention(q_c, k, v, attn_mask=bias, scale=g.scale)
        else:
            o, m = _flash_cpu_op()(q_c, k, v, 0., False, attn_mask=bias, scale=g.scale)
            lse[i, :, w] = m.transpose(0, 1)
        out[i, window_rows] = o[..., :d].view(-1, nww, h, s, s, d).permute(0, 3, 1, 4, 2, 5)
    return out.view(b, nwh * s, nww * s, h * d)


class _FocalAttentionCore(torch.autograd.Function):
    """Focal attention from the qkv projections to the (B, Hp, Wp, C) output, with its own backward.

    Autograd through the gather and two matmuls would keep the gathered keys and values of every
    block until the backward pass (~220 per query where Swin has 49), and autograd through the
    packing of q and the sources would zero-fill and add gradient buffers of the whole map. Here the
    queries, the key sources (one entry per token) and the output are saved, plus, on CPU, the
    log-sum-exp of PyTorch's flash kernel (``flash=True``; the probabilities are recomputed piece by
    piece in backward) or, elsewhere, the probabilities. Backward gathers the keys again, scatters
    their gradients with ``index_add_`` and writes the qkv gradient directly. With the flash variant
    no (windows, heads, s2, N) tensor lives from forward to backward (README, "Speed").
    """

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, kv_pooled: Optional[torch.Tensor], bias: torch.Tensor, g: _Geometry,
                flash: bool) -> torch.Tensor:
        # Autocast off inside: everything runs in the dtype of qkv (fp16/bf16 under autocast), so the
        # backward pass, which runs without autocast, sees the same dtypes; softmax at least in fp32.
        with torch.autocast(qkv.device.type, enabled=False):
            q, src = _pack(qkv, kv_pooled, g)
            b, h, nw, s2, e = q.shape
            (nwh, nww), s, d = g.grid, g.window, g.head_dims
            if flash:
                saved = q.new_empty(b, h, nw, s2, dtype=_accumulate_dtype(q.dtype))  # log-sum-exp
                out = _fused_attention(q, src, bias[:, :, 0], g, lse=saved)
            else:
                kv = _gather_kv(src, g.index, g.n_keys)
                logits = torch.matmul(q * g.scale, kv[0].transpose(-1, -2)).add_(bias)
                saved = logits.softmax(dim=-1, dtype=_accumulate_dtype(q.dtype)).to(q.dtype)  # probabilities
                o = torch.matmul(saved, kv[1])[..., :d].view(b, h, nwh, nww, s, s, d)
                out = o.permute(0, 2, 4, 3, 5, 1, 6).reshape(b, nwh * s, nww * s, h * d)
        ctx.save_for_backward(q, src, bias, out, saved)
        ctx.g, ctx.flash, ctx.has_pooled = g, flash, kv_pooled is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple:
        q, src, bias, out, saved = ctx.saved_tensors
        g = ctx.g
        b, h, nw, s2, e = q.shape
        (nwh, nww), s, d, n_keys = g.grid, g.window, g.head_dims, g.n_keys
        n_src, n_fine = src.shape[1], nwh * s * nww * s
        grad_out = grad_out.contiguous().view(b, nwh, s, nww, s, h, d)
        # softmax backward: dS = P * (dP - rowsum(dP * P)) and rowsum(dP * P) == rowsum(dO * O).
        delta = (grad_out * out.view(grad_out.shape)).sum(dim=-1)  # (B, nWh, s, nWw, s, h)
        grad_qkv = q.new_empty(b, nwh, s, nww, s, 3, h, d)
        grad_src = src.new_zeros(b, n_src, 2 * h * e)
        grad_bias = q.new_zeros(h, s2, n_keys, dtype=_accumulate_dtype(q.dtype))
        for i, window_rows in _window_chunks(q, n_keys, g.grid):
            w = _window_slice(window_rows, nww)
            n_rows = window_rows.stop - window_rows.start
            idx = g.index.view(nw, n_keys)[w].reshape(-1)
            # by token rows, then head-major so each (head, window) has contiguous key matrices
            rows = _scratch('kv_rows', (idx.numel(), 2 * h * e), q)
            torch.index_select(src[i].view(n_src, -1), 0, idx, out=rows)
            kv = _scratch('kv', (2, h, w.stop - w.start, n_keys, e), q)
            kv.copy_(rows.view(-1, n_keys, 2, h, e).permute(2, 3, 0, 1, 4))
            q_c = q[i, :, w] * g.scale
            grad_out_c = _scratch('grad_out', q_c.shape, q)
            grad_out_c.view(h, n_rows, nww, s, s, e)[..., :d] = grad_out[i, window_rows].permute(4, 0, 2, 1, 3, 5)
            grad_out_c[..., d:] = 0
            if ctx.flash:
                attn = torch.matmul(q_c, kv[0].transpose(-1, -2), out=_scratch('attn', q_c.shape[:-1] + (n_keys, ), q))
                attn.add_(bias[0]).sub_(saved[i, :, w].unsqueeze(-1)).exp_()
            else:
                attn = saved[i, :, w]
            grad_kv = _scratch('grad_kv', kv.shape, q)
            torch.matmul(attn.transpose(-1, -2), grad_out_c, out=grad_kv[1])
            grad_attn = torch.matmul(grad_out_c, kv[1].transpose(-1, -2), out=_scratch('grad_attn', attn.shape, q))
            delta_c = delta[i, window_rows].permute(4, 0, 2, 1, 3).reshape(h, -1, s2, 1)
            grad_attn.sub_(delta_c).mul_(attn)
            grad_bias += grad_attn.sum(dim=1)
            grad_q = torch.matmul(grad_attn, kv[0]).mul_(g.scale)
            grad_q = grad_q[..., :d].view(h, n_rows, nww, s, s, d)
            grad_qkv[i, window_rows, :, :, :, 0] = grad_q.permute(1, 3, 2, 4, 0, 5)
            torch.matmul(grad_attn.transpose(-1, -2), q_c, out=grad_kv[0])
            # scattered by token rows too: 0.6 ms with the permute against 0.9 ms along the head-major layout
            grad_rows = _scratch('grad_rows', (w.stop - w.start, n_keys, 2, h, e), q)
            grad_rows.copy_(grad_kv.permute(2, 3, 0, 1, 4))
            grad_src[i].index_add_(0, idx, grad_rows.view(-1, 2 * h * e))
        grad_src = grad_src.view(b, n_src, 2, h, e)[..., :d]
        grad_qkv[..., 1:, :, :] = grad_src[:, :n_fine].view(b, nwh, s, nww, s, 2, h, d)
        grad_pooled = None
        if ctx.has_pooled:
            p = g.pad
            pooled = grad_src[:, n_fine:].view(b, nwh + 2 * p, nww + 2 * p, 2, h, d)
            # the zero padding has no gradient to pass on
            grad_pooled = pooled[:, p:p + nwh, p:p + nww].reshape(b, nwh, nww, 2 * h * d)
        grad_bias = grad_bias.to(bias.dtype).view(1, h, 1, s2, n_keys)
        return grad_qkv.view(b, nwh * s, nww * s, 3 * h * d), grad_pooled, grad_bias, None, None


# ----------------------------------------------------------------------------------------------
# Attention
# ----------------------------------------------------------------------------------------------

class FocalAttention(BaseModule):
    """Focal self-attention of one block (official v1 ``WindowAttention``), any input size.

    Each query window attends to (a) its own s×s tokens, (b) the tokens of an ``expand_size``-wide
    ring around it, read cyclically over the padded map as the official rolls do, and (c) with
    ``focal_level == 2`` the fw×fw neighbourhood of pooled sub-window tokens, zero outside the grid
    and masked there with -100.

    Args:
        embed_dims: Channels C.
        num_heads: Attention heads (C must be divisible by it).
        window_size: Window side s.
        expand_size: Ring width e (0 disables the ring).
        focal_level: 1 (window and ring only) or 2 (plus one pooled level).
        focal_window: Pooled neighbourhood side fw (odd).
        qkv_bias: Bias in the qkv projection.
        qk_scale: Override of head_dim ** -0.5.
        attn_drop: Dropout on attention weights.
        proj_drop: Dropout after the output projection.
        attn_impl: ``'fast'`` (one gather + fused attention) or ``'reference'`` (official roll/unfold).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 window_size: int = 7,
                 expand_size: int = 3,
                 focal_level: int = 2,
                 focal_window: int = 7,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 attn_impl: str = 'fast',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.window_size = window_size
        self.expand_size = expand_size
        self.focal_level = focal_level
        self.focal_window = focal_window
        self.scale = qk_scale or self.head_dims ** -0.5
        self.attn_impl = attn_impl
        s = window_size

        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * s - 1) ** 2, num_heads))
        self.register_buffer('relative_position_index', relative_position_index(s, s), persistent=False)
        if expand_size > 0:
            n_ring = 4 * (s * s - (s - expand_size) ** 2)
            self.relative_position_bias_table_to_neighbors = nn.Parameter(torch.zeros(1, num_heads, s * s, n_ring))
            self.register_buffer('valid_ind_rolled', expand_ring_valid_index(s, expand_size), persistent=False)
            offsets = expand_ring_offsets(s, expand_size)
            first, slots, repeats = ring_duplicates(offsets)
            self.register_buffer('ring_offsets', offsets[first], persistent=False)  # distinct ones, fast path
            self.register_buffer('ring_first', first, persistent=False)
            self.register_buffer('ring_slots', slots, persistent=False)
            self.register_buffer('ring_repeats', repeats, persistent=False)
        if focal_level > 1:
            self.relative_position_bias_table_to_windows = nn.ParameterList(
                [nn.Parameter(torch.zeros(num_heads, (s + focal_window - 1) ** 2))])
            self.register_buffer('relative_position_index_0', relative_position_index(s, focal_window),
                                 persistent=False)
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self._index_cache: Dict[tuple, Tuple[torch.Tensor, Optional[torch.Tensor]]] = {}

    # --- shared pieces ---------------------------------------------------------------------

    def position_bias(self, merge_ring: bool = False) -> torch.Tensor:
        """Additive bias for all keys of a window, (heads, s*s, N), in key order window|ring|pooled.

        Args:
            merge_ring: One key per distinct ring offset (the fast path's keys), repeated keys
                merged with ``logaddexp`` of their biases (:func:`ring_duplicates`).
        """
        s2 = self.window_size ** 2
        parts = [self.relative_position_bias_table[self.relative_position_index.flatten()].view(s2, s2, -1)
                 .permute(2, 0, 1)]
        if self.expand_size > 0:
            ring = self.relative_position_bias_table_to_neighbors[0]
            if merge_ring:
                first = ring[..., self.ring_first]
                # -inf where nothing merges: logaddexp(b, -inf) == b exactly, with gradient 1 and 0
                repeats = torch.full_like(first, float('-inf')).index_copy(-1, self.ring_slots,
                                                                          ring[..., self.ring_repeats])
                ring = torch.logaddexp(first, repeats)
            parts.append(ring)
        if self.focal_level > 1:
            table = self.relative_position_bias_table_to_windows[0]
            parts.append(table[:, self.relative_position_index_0.flatten()].view(self.num_heads, s2, -1))
        return torch.cat(parts, dim=-1)

    def _gather_index(self, hp: int, wp: int, device: torch.device) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Flat source index of every key of every window, and the per-source border mask.

        Sources are the hp*wp fine tokens followed by the (nWh+2p)*(nWw+2p) zero-padded pooled grid.
        The official -100 mask hits exactly the keys read from that zero padding, so it is a property of
        the source token and can travel with it through the gather.

        Returns:
            index (nW, N) long; mask (T,) with 0 / -100 per source token, or None when nothing is masked.
        """
        key = (hp, wp, device)
        if key in self._index_cache:
            return self._index_cache[key]
        s = self.window_size
        nwh, nww = hp // s, wp // s
        wi, wj = torch.meshgrid(torch.arange(nwh), torch.arange(nww), indexing='ij')
        top, left = (wi.flatten() * s)[:, None], (wj.flatten() * s)[:, None]  # (nW, 1)
        r, c = torch.meshgrid(torch.arange(s), torch.arange(s), indexing='ij')
        index = [(top + r.flatten()) * wp + left + c.flatten()]
        if self.expand_size > 0:
            off = self.ring_offsets.cpu()
            rows = (top + off[:, 0]) % hp  # cyclic, as the official torch.roll
            cols = (left + off[:, 1]) % wp
            index.append(rows * wp + cols)
        mask = None
        if self.focal_level > 1:
            fw, p = self.focal_window, self.focal_window // 2
            a, b = torch.meshgrid(torch.arange(fw), torch.arange(fw), indexing='ij')
            prow = wi.flatten()[:, None] + a.flatten()  # row in the padded pooled grid
            pcol = wj.flatten()[:, None] + b.flatten()
            index.append(hp * wp + prow * (nww + 2 * p) + pcol)
            if p > 0:
                grid = torch.full((nwh + 2 * p, nww + 2 * p), MASK_VALUE)
                grid[p:p + nwh, p:p + nww] = 0
                mask = torch.cat([torch.zeros(hp * wp), grid.flatten()]).to(device)
        out = (torch.cat(index, dim=1).to(device), mask)
        if len(self._index_cache) > 16:  # detection sizes vary; keep the cache bounded
            self._index_cache.clear()
        self._index_cache[key] = out
        return out

    # --- forward ---------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, pooled: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend on a padded map.

        Args:
            x: (B, Hp, Wp, C) with Hp, Wp multiples of the window size.
            pooled: (B, Hp/s, Wp/s, C) pooled sub-window tokens when ``focal_level == 2``.

        Returns:
            (B, Hp, Wp, C).
        """
        if self.attn_impl == 'reference' or (self.training and self.attn_drop.p > 0):
            # Attention dropout (no released model uses it) drops every key's probability on its own,
            # repeated ring keys included: the official formulation, which keeps them apart.
            return self._forward_reference(x, pooled)
        return self._forward_fast(x, pooled)

    def _forward_fast(self, x: torch.Tensor, pooled: Optional[torch.Tensor]) -> torch.Tensor:
        b, hp, wp, c = x.shape
        s, h, d = self.window_size, self.num_heads, self.head_dims
        index, mask = self._gather_index(hp, wp, x.device)
        g = _Geometry((hp // s, wp // s), s, h, d, d + (mask is not None), self.focal_window // 2, index.shape[1],
                      index.flatten(), mask, self.scale)
        qkv = self.qkv(x)
        kv_pooled = None
        if self.focal_level > 1:
            kv_pooled = F.linear(pooled, self.qkv.weight[c:], None if self.qkv.bias is None else self.qkv.bias[c:])
        bias = self.position_bias(merge_ring=True).to(qkv.dtype)[None, :, None]  # (1, h, 1, s2, N)
        inputs = [t for t in (qkv, kv_pooled, bias) if t is not None and t.requires_grad]
        if not torch.is_grad_enabled() or not inputs:
            q, src = _pack(qkv, kv_pooled, g)
            return self.proj_drop(self.proj(_fused_attention(q, src, bias[:, :, 0], g)))
        _release_after_backward(inputs[0])
        flash = x.device.type == 'cpu' and _flash_cpu_op() is not None
        out = _FocalAttentionCore.apply(qkv, kv_pooled, bias, g, flash)
        return self.proj_drop(self.proj(out))

    def _forward_reference(self, x: torch.Tensor, pooled: Optional[torch.Tensor]) -> torch.Tensor:
        """The official formulation: rolled copies, unfold, explicit logits and softmax."""
        b, hp, wp, c = x.shape
        s, h, d, e = self.window_size, self.num_heads, self.head_dims, self.expand_size
        q, k, v = self.qkv(x).view(b, hp, wp, 3, c).unbind(3)

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, nW, n, C) -> (B*nW, h, n, d)
            return t.reshape(-1, t.shape[2], h, d).transpose(1, 2)

        q_w, k_all, v_all = (heads(window_partition(t, s)) for t in (q, k, v))
        if e > 0:
            rolled_k, rolled_v = [], []
            for shift in ((-e, -e), (-e, e), (e, -e), (e, e)):
                rolled_k.append(window_partition(torch.roll(k, shifts=shift, dims=(1, 2)), s))
                rolled_v.append(window_partition(torch.roll(v, shifts=shift, dims=(1, 2)), s))
            ring_k = heads(torch.cat(rolled_k, dim=2))[:, :, self.valid_ind_rolled]
            ring_v = heads(torch.cat(rolled_v, dim=2))[:, :, self.valid_ind_rolled]
            k_all, v_all = torch.cat([k_all, ring_k], 2), torch.cat([v_all, ring_v], 2)
        mask = None
        if self.focal_level > 1:
            fw = self.focal_window
            nwh, nww = pooled.shape[1:3]
            unfold = nn.Unfold(kernel_size=fw, stride=1, padding=fw // 2)
            ones = pooled.new_ones(1, 1, nwh, nww)
            valid = unfold(ones).view(fw * fw, nwh * nww).t()  # (nW, fw2)
            mask = valid.masked_fill(valid == 0, MASK_VALUE).masked_fill(valid > 0, 0.)
            _, kp, vp = self.qkv(pooled).view(b, nwh, nww, 3, c).permute(3, 0, 4, 1, 2).unbind(0)

            def unfold_heads(t: torch.Tensor) -> torch.Tensor:  # (B, C, nWh, nWw) -> (B*nW, h, fw2, d)
                t = unfold(t).view(b, c, fw * fw, nwh * nww).permute(0, 3, 2, 1)
                return t.reshape(-1, fw * fw, h, d).transpose(1, 2)

            k_all = torch.cat([k_all, unfold_heads(kp)], 2)
            v_all = torch.cat([v_all, unfold_heads(vp)], 2)
        attn = (q_w * self.scale) @ k_all.transpose(-2, -1) + self.position_bias().unsqueeze(0)
        if mask is not None:
            n_fine = attn.shape[-1] - mask.shape[-1]
            attn = attn.view(b, -1, h, s * s, attn.shape[-1])
            attn = torch.cat([attn[..., :n_fine], attn[..., n_fine:] + mask[None, :, None, None, :]], dim=-1)
            attn = attn.flatten(0, 1)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v_all).transpose(1, 2).reshape(b, -1, s * s, c)
        out = self.proj_drop(self.proj(out))
        return window_reverse(out, s, hp, wp)


# ----------------------------------------------------------------------------------------------
# Block, stage, patch embedding
# ----------------------------------------------------------------------------------------------

class FocalMlp(BaseModule):
    """Transformer MLP with the official parameter names (``fc1``, ``fc2``).

    Args:
        embed_dims: Input and output channels.
        hidden_dims: Hidden channels.
        drop: Dropout after each linear layer.
    """

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply fc1 -> GELU -> fc2."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class FocalBlock(BaseModule):
    """Pre-norm Focal Transformer block: ``x + attn(LN(x))``, then ``x + mlp(LN(x))``.

    Args:
        embed_dims: Channels C.
        num_heads: Attention heads.
        window_size: Window side s.
        expand_size: Expand-ring width.
        focal_level: 1 or 2.
        focal_window: Pooled neighbourhood side.
        pool_method: Sub-window pooling for level 2: ``'fc'`` (official), ``'mean'``, ``'max'``, ``'conv'``.
        mlp_ratio: MLP hidden width / C.
        qkv_bias: Bias in the qkv projection.
        qk_scale: Override of the attention scale.
        drop_rate: Dropout after projections.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth of this block.
        norm_cfg: Norm config for the token norms.
        attn_impl: ``'fast'`` or ``'reference'``.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 window_size: int = 7,
                 expand_size: int = 3,
                 focal_level: int = 2,
                 focal_window: int = 7,
                 pool_method: str = 'fc',
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN'),
                 attn_impl: str = 'fast',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.window_size = window_size
        self.focal_level = focal_level
        self.pool_method = pool_method
        # Registered before norm1, as in the official block (only the key order depends on it).
        self.pool_layers = nn.ModuleList()
        if focal_level > 1:
            if pool_method == 'fc':
                self.pool_layers.append(nn.Linear(window_size * window_size, 1))
            elif pool_method == 'conv':
                self.pool_layers.append(
                    nn.Conv2d(embed_dims, embed_dims, window_size, stride=window_size, groups=embed_dims))
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = FocalAttention(embed_dims, num_heads, window_size, expand_size, focal_level, focal_window,
                                   qkv_bias, qk_scale, attn_drop_rate, drop_rate, attn_impl)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity()
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = FocalMlp(embed_dims, int(embed_dims * mlp_ratio), drop_rate)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Pool each s×s sub-window of a padded (B, Hp, Wp, C) map to one token: (B, Hp/s, Wp/s, C)."""
        b, hp, wp, c = x.shape
        s = self.window_size
        if self.pool_method == 'conv':
            return self.pool_layers[0](x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        windows = x.view(b, hp // s, s, wp // s, s, c)
        if self.pool_method == 'mean':
            return windows.mean(dim=(2, 4))
        if self.pool_method == 'max':
            return windows.amax(dim=(2, 4))
        fc = self.pool_layers[0]  # Linear(s*s -> 1) over row-major tokens, shared by channels
        return torch.einsum('bhiwjc,ij->bhwc', windows, fc.weight.view(s, s).to(x.dtype)) + fc.bias.to(x.dtype)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        """Apply the block to (B, H*W, C) tokens of an H×W map."""
        h, w = hw_shape
        b, n, c = x.shape
        s = self.window_size
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        pad_b, pad_r = (s - h % s) % s, (s - w % s) % s
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))  # zeros after the norm, unmasked (official)
        pooled = self.pool(x) if self.focal_level > 1 else None
        x = self.attn(x, pooled)
        if pad_b or pad_r:
            x = x[:, :h, :w, :]
        x = shortcut + self.drop_path(x.reshape(b, n, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class FocalPatchEmbed(BaseModule):
    """Convolutional patch embedding + LayerNorm: the stem and the between-stage downsampling.

    Args:
        in_channels: Input channels.
        embed_dims: Output channels.
        is_stem: Stem (stride 4) or downsampling (stride 2).
        use_conv_embed: Overlapping convolution (k7 s4 p2 stem, k3 s2 p1 downsample) instead of
            non-overlapping patches (k4 s4, k2 s2).
        norm_cfg: Norm config.
    """

    def __init__(self, in_channels: int, embed_dims: int, is_stem: bool, use_conv_embed: bool = False,
                 norm_cfg: dict = dict(type='LN')) -> None:
        super().__init__()
        self.patch_size = 4 if is_stem else 2
        self.pad_input = is_stem and not use_conv_embed
        if use_conv_embed:
            kernel, stride, padding = (7, 4, 2) if is_stem else (3, 2, 1)
        else:
            kernel, stride, padding = self.patch_size, self.patch_size, 0
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel, stride=stride, padding=padding)
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """(B, C, H, W) -> ((B, H'*W', C'), (H', W'))."""
        if self.pad_input:
            p = self.patch_size
            pad_b, pad_r = (p - x.shape[2] % p) % p, (p - x.shape[3] % p) % p
            if pad_b or pad_r:
                x = F.pad(x, (0, pad_r, 0, pad_b))
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class FocalStage(BaseModule):
    """A sequence of Focal blocks followed by an optional downsampling patch embedding.

    Args:
        embed_dims: Channels of the stage.
        depth: Number of blocks.
        num_heads: Attention heads.
        drop_path_rates: Per-block stochastic depth rates.
        downsample: Append a stride-2 patch embedding that doubles the channels.
        use_conv_embed: Overlapping downsampling convolution.
        with_cp: Gradient checkpointing per block.
        block_cfg: Remaining :class:`FocalBlock` arguments.
    """

    def __init__(self, embed_dims: int, depth: int, num_heads: int, drop_path_rates: Sequence[float],
                 downsample: bool, use_conv_embed: bool = False, with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN'), **block_cfg) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.blocks = nn.ModuleList([
            FocalBlock(embed_dims, num_heads, drop_path_rate=drop_path_rates[i], norm_cfg=norm_cfg, **block_cfg)
            for i in range(depth)
        ])
        self.downsample = FocalPatchEmbed(embed_dims, 2 * embed_dims, False, use_conv_embed,
                                          norm_cfg) if downsample else None

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int], downsample: bool = True
                ) -> Tuple[torch.Tensor, Tuple[int, int], torch.Tensor, Tuple[int, int]]:
        """Run the blocks; return (stage output, its size, downsampled tokens, their size).

        With ``downsample=False`` (no later stage is needed) the downsampling is skipped and the stage
        output is returned in its place.
        """
        for block in self.blocks:
            if self.with_cp and torch.is_grad_enabled():
                x = cp.checkpoint(block, x, hw_shape, use_reentrant=False)
            else:
                x = block(x, hw_shape)
        if self.downsample is None or not downsample:
            return x, hw_shape, x, hw_shape
        b, _, c = x.shape
        x_down, hw_down = self.downsample(x.transpose(1, 2).reshape(b, c, *hw_shape))
        return x, hw_shape, x_down, hw_down


# ----------------------------------------------------------------------------------------------
# Backbone
# ----------------------------------------------------------------------------------------------

def _to_tuple(value: Union[int, float, Sequence], n: int, name: str) -> tuple:
    """Broadcast a scalar to n stages or check a per-stage sequence's length."""
    if isinstance(value, (int, float)):
        return (value, ) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f'{name} has {len(value)} entries but depths has {n}: give one value per stage.')
    return value


class FocalTransformer(BaseModule):
    """Focal Transformer backbone (v1) returning multi-scale NCHW features.

    Args:
        arch: Preset ``'tiny'``, ``'small'`` or ``'base'`` (or ``'t'``/``'s'``/``'b'``); explicit
            ``embed_dims``/``depths``/``num_heads`` override it.
        in_channels: Image channels.
        embed_dims: Stage-1 channels C0 (stage i has C0 * 2^i).
        depths: Blocks per stage.
        num_heads: Heads per stage.
        window_size: Window side s (7 in all official models).
        focal_levels: Per stage, 2 = window + one pooled level (official), 1 = no pooled level.
        focal_windows: Per-stage pooled neighbourhood side (odd). ImageNet (7, 5, 3, 1); the paper's
            detection models use (15, 13, 9, 7) and the pretrained tables are resized on load.
        expand_sizes: Per-stage expand-ring width. ``(3, 3, 3, 0)`` is the layout of the released
            224 checkpoints; ``(3, 3, 3, 3)`` adds a freshly initialised stage-4 ring table.
        focal_pool: Sub-window pooling: ``'fc'`` (official), ``'mean'``, ``'max'``, ``'conv'``.
        mlp_ratio: MLP hidden width / channels.
        qkv_bias: Bias in the qkv projections.
        qk_scale: Override of head_dim ** -0.5.
        drop_rate: Dropout after projections.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth, linearly increasing over all blocks.
        use_conv_embed: Overlapping convolutional stem/downsampling (the official "useconv" models).
        out_indices: Stages whose outputs are returned (0..3 -> strides 4, 8, 16, 32).
        frozen_stages: -1 freezes nothing; 0 the stem; k also stages 1..k (and their norms).
        norm_eval: Keep norm layers in eval mode during training.
        with_cp: Gradient checkpointing per block (saves memory, same results).
        norm_cfg: Norm config of all token norms.
        attn_impl: ``'fast'`` (default) or ``'reference'`` (official roll/unfold formulation).
        pretrain_img_size: Accepted for config compatibility; no size is fixed at construction.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` loads an official or converted checkpoint.

    Examples:
        >>> import torch
        >>> from mmfocal.models import FocalTransformer
        >>> model = FocalTransformer(arch='tiny').eval()
        >>> feats = model(torch.rand(1, 3, 224, 320))
        >>> [tuple(f.shape) for f in feats]
        [(1, 96, 56, 80), (1, 192, 28, 40), (1, 384, 14, 20), (1, 768, 7, 10)]
    """

    arch_zoo = {
        'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
        'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
        'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    }
    arch_aliases = {'t': 'tiny', 's': 'small', 'b': 'base'}

    def __init__(self,
                 arch: str = 'tiny',
                 in_channels: int = 3,
                 embed_dims: Optional[int] = None,
                 depths: Optional[Sequence[int]] = None,
                 num_heads: Optional[Sequence[int]] = None,
                 window_size: int = 7,
                 focal_levels: Union[int, Sequence[int]] = 2,
                 focal_windows: Union[int, Sequence[int]] = (7, 5, 3, 1),
                 expand_sizes: Union[int, Sequence[int]] = (3, 3, 3, 0),
                 focal_pool: str = 'fc',
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.2,
                 use_conv_embed: bool = False,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 norm_cfg: dict = dict(type='LN'),
                 attn_impl: str = 'fast',
                 pretrain_img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        arch_key = self.arch_aliases.get(str(arch).lower(), str(arch).lower())
        if arch_key not in self.arch_zoo:
            raise ValueError(f'Unknown arch {arch!r}; choose one of {sorted(self.arch_zoo)} '
                             "(or give embed_dims, depths and num_heads explicitly).")
        preset = self.arch_zoo[arch_key]
        embed_dims = preset['embed_dims'] if embed_dims is None else int(embed_dims)
        depths = tuple(preset['depths'] if depths is None else depths)
        n = len(depths)
        num_heads = _to_tuple(preset['num_heads'] if num_heads is None else num_heads, n, 'num_heads')
        focal_levels = _to_tuple(focal_levels, n, 'focal_levels')
        focal_windows = _to_tuple(focal_windows, n, 'focal_windows')
        expand_sizes = _to_tuple(expand_sizes, n, 'expand_sizes')
        self._check_args(embed_dims, depths, num_heads, window_size, focal_levels, focal_windows, expand_sizes,
                         focal_pool, attn_impl, out_indices, frozen_stages, drop_path_rate)

        self.arch = arch_key
        self.embed_dims = embed_dims
        self.depths = depths
        self.num_heads = num_heads
        self.window_size = window_size
        self.focal_levels = focal_levels
        self.focal_windows = focal_windows
        self.expand_sizes = expand_sizes
        self.use_conv_embed = use_conv_embed
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.num_features = [embed_dims * 2 ** i for i in range(n)]

        self.patch_embed = FocalPatchEmbed(in_channels, embed_dims, True, use_conv_embed, norm_cfg)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList()
        for i in range(n):
            self.layers.append(
                FocalStage(
                    self.num_features[i], depths[i], num_heads[i], dpr[sum(depths[:i]):sum(depths[:i + 1])],
                    downsample=i < n - 1, use_conv_embed=use_conv_embed, with_cp=with_cp, norm_cfg=norm_cfg,
                    window_size=window_size, expand_size=expand_sizes[i], focal_level=focal_levels[i],
                    focal_window=focal_windows[i], pool_method=focal_pool, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                    qk_scale=qk_scale, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, attn_impl=attn_impl))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.num_features[i])[1])

        register_load_state_dict_pre_hook(self, self._adapt_incoming_state_dict)
        self._freeze_stages()

    # --- construction ------------------------------------------------------------------------

    @staticmethod
    def _check_args(embed_dims: int, depths: tuple, num_heads: tuple, window_size: int, focal_levels: tuple,
                    focal_windows: tuple, expand_sizes: tuple, focal_pool: str, attn_impl: str,
                    out_indices: Sequence[int], frozen_stages: int, drop_path_rate: float) -> None:
        """Reject bad configurations with one message that says what to change."""
        n = len(depths)
        if n == 0 or any(int(d) < 1 for d in depths):
            raise ValueError(f'depths must be a non-empty sequence of positive ints, got {depths}.')
        if int(window_size) < 1:
            raise ValueError(f'window_size must be >= 1, got {window_size}.')
        for i in range(n):
            channels = embed_dims * 2 ** i
            if channels % num_heads[i]:
                raise ValueError(f'stage {i}: {channels} channels are not divisible by num_heads={num_heads[i]}.')
            if focal_levels[i] not in (1, 2):
                raise ValueError(f'focal_levels[{i}]={focal_levels[i]}: only 1 or 2 are supported '
                                 '(2 = window + one pooled level, as in every official model).')
            if focal_windows[i] < 1 or focal_windows[i] % 2 == 0:
                raise ValueError(f'focal_windows[{i}]={focal_windows[i]}: must be a positive odd number.')
            if not 0 <= expand_sizes[i] < window_size:
                raise ValueError(f'expand_sizes[{i}]={expand_sizes[i]}: must be in [0, window_size={window_size}).')
        if focal_pool not in ('fc', 'mean', 'max', 'conv'):
            raise ValueError(f"focal_pool={focal_pool!r}: choose 'fc', 'mean', 'max' or 'conv'.")
        if attn_impl not in ('fast', 'reference'):
            raise ValueError(f"attn_impl={attn_impl!r}: choose 'fast' or 'reference'.")
        if len(out_indices) == 0 or any(not 0 <= int(i) < n for i in out_indices):
            raise ValueError(f'out_indices={tuple(out_indices)} out of range: stages are 0..{n - 1}.')
        if not -1 <= frozen_stages <= n:
            raise ValueError(f'frozen_stages={frozen_stages}: must be in [-1, {n}].')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate={drop_path_rate}: must be in [0, 1).')

    def _pretrained_path(self) -> Optional[str]:
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        for cfg in cfgs:
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
                if not cfg.get('checkpoint'):
                    raise ValueError("init_cfg type 'Pretrained' needs checkpoint=PATH.")
                return str(cfg['checkpoint'])
        return None

    def check_pretrained(self) -> None:
        """Fail early on a missing ``init_cfg`` checkpoint or one of another width (cheap, memory-mapped).

        Building the model never reads weights (testing, FLOP counting and export need none);
        :meth:`init_weights` calls this first, and ``tools/train.py`` before the data loaders start.

        Raises:
            FileNotFoundError: The checkpoint file does not exist (the message names its official URL).
            CheckpointMismatchError: The checkpoint is for another width or stem.
        """
        path = self._pretrained_path()
        if path is None or '://' in path:
            return
        if not os.path.isfile(os.path.expanduser(path)):
            url = official_checkpoint_url(path)
            where = f'download it from {url}' if url else 'download the official ImageNet checkpoint (README, ' \
                '"Pretrained weights")'
            raise FileNotFoundError(
                f'FocalTransformer init_cfg checkpoint not found: {path!r}: {where} into that path, or set '
                'init_cfg=None to train from scratch.')
        state, _ = official_to_mmfocal(load_checkpoint_file(os.path.expanduser(path), mmap=True))
        own = self.patch_embed.proj.weight
        theirs = state.get('patch_embed.proj.weight')
        if theirs is not None and tuple(theirs.shape) != tuple(own.shape):
            raise CheckpointMismatchError(
                f'{path}: patch_embed.proj.weight is {tuple(theirs.shape)} but this model needs {tuple(own.shape)}: '
                f'the checkpoint is for another width or stem (arch={self.arch!r}, embed_dims={self.embed_dims}, '
                f'use_conv_embed={self.use_conv_embed}).')

    # --- weights -----------------------------------------------------------------------------

    def _official_init(self) -> None:
        """The official initialisation (trunc-normal 0.02 Linear weights and bias tables)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.weight, 1.0)
                nn.init.constant_(m.bias, 0)
        for m in self.modules():
            if isinstance(m, FocalAttention):
                if m.expand_size > 0:
                    trunc_normal_(m.relative_position_bias_table_to_neighbors, std=.02)
                if m.focal_level > 1:
                    trunc_normal_(m.relative_position_bias_table_to_windows[0], std=.02)
            elif isinstance(m, FocalBlock) and m.pool_method == 'fc' and len(m.pool_layers):
                # Mean pooling to start with (the official constructor's intent).
                nn.init.constant_(m.pool_layers[0].weight, 1. / m.pool_layers[0].in_features)
                nn.init.constant_(m.pool_layers[0].bias, 0)

    def init_weights(self) -> None:
        """Official initialisation, then the ``Pretrained`` checkpoint of ``init_cfg`` if any."""
        self.check_pretrained()
        self._official_init()
        path = self._pretrained_path()
        if path is not None:
            self.load_pretrained(path)
        self._is_init = True
        self._freeze_stages()

    def load_pretrained(self, path: str) -> Dict[str, List[str]]:
        """Load an official or converted checkpoint and log one summary line.

        Args:
            path: Checkpoint path or URI.

        Returns:
            ``{'missing': [...], 'unexpected': [...]}`` backbone keys.
        """
        state, notes = official_to_mmfocal(load_checkpoint_file(os.path.expanduser(path)), self.state_dict())
        result = self.load_state_dict(state, strict=False)
        missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
        print_log(
            f'FocalTransformer: loaded {len(state) - len(unexpected)} tensors from {path}; '
            f'missing (newly initialised): {summarize_keys(missing)}; '
            f'unexpected (ignored): {summarize_keys(unexpected)}' + (f'; {"; ".join(notes)}' if notes else ''),
            logger='current')
        return {'missing': missing, 'unexpected': unexpected}

    def _adapt_incoming_state_dict(self, module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
        """Pre-hook for every ``load_state_dict`` (init_cfg, load_from, resume): drop index buffers,
        resize bias tables of other focal windows / window sizes, reject other widths clearly."""
        if not any(k.startswith(prefix) for k in state_dict):
            return
        _, resized = adapt_state_dict(state_dict, self.state_dict(), prefix)
        if resized:
            print_log(f'FocalTransformer: resized bias tables {", ".join(resized)}', logger='current')

    # --- training mode -----------------------------------------------------------------------

    def _freeze_stages(self) -> None:
        """Freeze the stem and the first ``frozen_stages`` stages (with their output norms)."""
        if self.frozen_stages >= 0:
            self.patch_embed.eval()
            for p in self.patch_embed.parameters():
                p.requires_grad = False
        for i in range(self.frozen_stages):
            modules = [self.layers[i]] + ([getattr(self, f'norm{i}')] if i in self.out_indices else [])
            for m in modules:
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> 'FocalTransformer':
        """Set training mode, keeping frozen stages (and norms with ``norm_eval``) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
                    m.eval()
        return self

    # --- forward -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the features of ``out_indices``.

        Args:
            x: Images (B, C, H, W), any H, W >= 32.

        Returns:
            Tuple of (B, C_i, H_i, W_i) maps with H_0 = ceil(H / 4) and H_{i+1} = floor(H_i / 2)
            (ceil with ``use_conv_embed``), i.e. strides 4, 8, 16, 32.
        """
        if x.dim() != 4:
            raise ValueError(f'FocalTransformer expects (B, C, H, W) images, got shape {tuple(x.shape)}.')
        if min(x.shape[2:]) < 32:
            raise ValueError(f'FocalTransformer needs H, W >= 32 (four stride-2 stages after stride 4); '
                             f'got {tuple(x.shape[2:])}.')
        x, hw = self.patch_embed(x)
        x = self.pos_drop(x)
        outs = []
        last = max(self.out_indices)
        _scratch_local.release_hooked = False
        for i, layer in enumerate(self.layers):
            out, out_hw, x, hw = layer(x, hw, downsample=i < last)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.transpose(1, 2).reshape(out.shape[0], -1, *out_hw).contiguous())
            if i >= last:
                break
        if not getattr(_scratch_local, 'release_hooked', False):
            release_scratch()
        return tuple(outs)
