"""Focal-fast (v2) attention: each window's nearest keys gathered from one row of projections per token, a
position bias looked up per (query, key) pair in one table of distinct offsets, a fused kernel.

:class:`mmfocal.models.layers.FocalV2Attention` calls one function per path: :func:`focal_v2_inference`
(FUSED, no autograd) and :func:`focal_v2_training` (CORE, :class:`FocalV2Core`) take one row of projections per
token: the map's T = h*w real tokens, row-major, then its P pooled window tokens (for keys only), and ``slots``
(nW * s2,) / ``index`` (nW * N,), the row of every query / key of every window
(:func:`~mmfocal.models.layers.focal_geometry.focal_v2_token_rows`). A window reaching past the map has pad
queries (slot T): they read any real row and their outputs land in one spare row after the T * B real ones,
which is dropped, so no pad token is projected.

:func:`focal_v2_attention` (AUTOGRAD, standard operators for ``torch.compile``) takes queries by window and
key/value sources of the real and pooled tokens. All take ``table`` (h, offsets), the position-bias MLPs
evaluated once per distinct offset, and the codes that address it: the bias of key k of query q of window w is
``table[:, query_code[w, q] - key_code[w, k]]``.
"""

import warnings
import weakref
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .focal_v1 import accumulate_dtype, explicit_attention
from .scratch import gather_rows, pieces, scatter_add_rows, scratch
from .settings import flash_cpu_op

__all__ = ['BiasLookup', 'FocalV2Core', 'bias_rows', 'focal_v2_attention', 'focal_v2_inference',
           'focal_v2_training', 'lookup_bias']


class BiasLookup(torch.autograd.Function):
    """``table[:, query_code - key_code]`` with a fast backward.

    Autograd's backward of ``index_select`` along the offsets is ``index_add_``, ~20x slower on CPU than
    ``scatter_add_`` with the index broadcast over the heads; the offsets are recomputed from the two small
    code tables instead of saving a (windows * s2 * keys) index.
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, query_code: torch.Tensor, key_code: torch.Tensor) -> torch.Tensor:
        code = query_code - key_code  # (nW, s2, N)
        ctx.save_for_backward(query_code, key_code)
        ctx.n_offsets = table.shape[1]
        return table.index_select(1, code.flatten()).view(-1, *code.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple:
        query_code, key_code = ctx.saved_tensors
        code = (query_code - key_code).flatten().long()
        grad = grad.reshape(grad.shape[0], -1)
        grad_table = grad.new_zeros(grad.shape[0], ctx.n_offsets).scatter_add_(1, code.expand_as(grad), grad)
        return grad_table, None, None


def lookup_bias(table: torch.Tensor, query_code: torch.Tensor, key_code: torch.Tensor) -> torch.Tensor:
    """The bias of every (window, query, key) pair, (nW, heads, s2, N), from the offset table (differentiable)."""
    return BiasLookup.apply(table, query_code, key_code).transpose(0, 1)


def bias_rows(table: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """The bias rows (U, heads, s2) the fused paths gather from: ``table[:, codes]``, differentiable.

    ``codes`` (U, s2) holds the table entries of every distinct (window, key) offset for every query of a
    window (:func:`~mmfocal.models.layers.focal_geometry.focal_v2_bias_rows`); the gradient goes back through
    :class:`BiasLookup`'s scatter.
    """
    return BiasLookup.apply(table.contiguous(), codes, codes.new_zeros(())).transpose(0, 1).contiguous()


def _window_pieces(n_windows: int, n_keys: int, kv_channels: int, heads: int, s2: int,
                   like: torch.Tensor) -> List[slice]:
    """Slices of windows whose gathered keys and biases fit a piece (:func:`~mmfocal.ops.pieces`)."""
    return pieces(n_windows, n_keys * (kv_channels + heads * s2) * like.element_size(), like.device)


def _piece_rows(slots: torch.Tensor, index: torch.Tensor, bias_index: torch.Tensor, s2: int,
                windows: slice) -> tuple:
    """The rows a piece of windows reads: ``(dst, idx, ridx)``, those of its queries, its keys and its keys'
    bias rows (each flattened window-major)."""
    nw = slots.numel() // s2
    n_keys = index.numel() // nw
    return (slots.view(nw, s2)[windows].flatten(), index.view(nw, n_keys)[windows].flatten(),
            bias_index.view(nw, n_keys)[windows].flatten())


def _key_biases(rows: torch.Tensor, ridx: torch.Tensor, n_keys: int) -> torch.Tensor:
    """The biases (nWc, N, heads, s2) of a piece's keys for every query, gathered by rows of ``rows``
    (U, heads, s2): key-major, so a (windows, heads, queries, keys) mask is a permuted view."""
    u, heads, s2 = rows.shape
    return gather_rows(rows.view(u, heads * s2), ridx, 'v2_bias').view(-1, n_keys, heads, s2)


def _mask(bias: torch.Tensor) -> torch.Tensor:
    """The (nWc, heads, s2, N) attention mask of a piece's key-major biases (nWc, N, heads, s2), contiguous.

    Copied once per piece for all its images: both kernels copy a mask whose keys are strided, once per call.
    """
    nwc, n_keys, heads, s2 = bias.shape
    return scratch.get('v2_mask', (nwc, heads, s2, n_keys), bias).copy_(bias.permute(0, 2, 3, 1))


def _query_rows(slots: torch.Tensor, t: int, b: int) -> tuple:
    """Where a piece's queries are read and written: ``(read, writes)``.

    ``read`` (per image) is ``slots`` with pad queries (slot ``t``) on row 0; ``writes[i]`` are the rows of
    image i's queries in a (b * t + 1, C) output whose last row takes (and drops) the pad queries'.
    """
    pad = slots == t
    if not bool(pad.any()):
        return slots, [slots + i * t for i in range(b)]
    return slots.masked_fill(pad, 0), [torch.where(pad, b * t, slots + i * t) for i in range(b)]


def _attend_piece(q_rows: torch.Tensor, kv_rows: torch.Tensor, dst: torch.Tensor, idx: torch.Tensor,
                  mask: torch.Tensor, heads: int, scale: float, flash: Optional[object],
                  need_lse: bool = False) -> tuple:
    """Attention of some windows of one image from its (T, C) query and (T + P, 2C) key/value rows: ``(out, lse)``.

    ``mask`` is the (nWc, heads, s2, N) bias (:func:`_mask`). ``out`` is (nWc, heads, s2, d) (from the flash
    kernel a view of its (nWc, s2, heads, d) output); ``lse`` (nWc, heads, s2) is the log-sum-exp of every
    query's biased logits: the flash kernel's, or, with ``need_lse`` and no flash op (torch < 2.4),
    :func:`~mmfocal.ops.explicit_attention`'s; else None (SDPA).
    """
    c, s2, n_keys = q_rows.shape[-1], mask.shape[2], mask.shape[3]
    d = c // heads
    q = gather_rows(q_rows, dst, 'v2_q').view(-1, s2, heads, d).transpose(1, 2)
    kv = gather_rows(kv_rows, idx, 'v2_kv').view(-1, n_keys, 2, heads, d)
    k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
    if flash is not None:
        out, lse = flash(q, k, v, 0., False, attn_mask=mask, scale=scale)[:2]
        return out, lse
    if need_lse:
        return explicit_attention(q, k, v, mask, scale, 'v2_')
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale), None


# per bias_index tensor (by id, dropped with the tensor): (first window, last window + 1, U) -> CSR matrix
_BIAS_SUMS: Dict[int, Dict[tuple, torch.Tensor]] = {}


def _bias_sum_matrix(bias_index: torch.Tensor, windows: slice, n_keys: int, u: int) -> torch.Tensor:
    """The (U, nWc * N) 0/1 CSR matrix that sums the gradients of a piece's keys into their bias rows.

    A sparse product sums each bias row's keys in one pass where ``scatter_add_`` of rows of s2 values took
    twice as long (the piece's keys hit a few hundred rows ~15 times each); built once per geometry and piece,
    so it lives as long as the (cached) ``bias_index`` it was made from.
    """
    per_index = _BIAS_SUMS.get(id(bias_index))
    if per_index is None:
        per_index = _BIAS_SUMS[id(bias_index)] = {}
        weakref.finalize(bias_index, _BIAS_SUMS.pop, id(bias_index), None)
    key = (windows.start, windows.stop, u)
    if key not in per_index:
        ridx = bias_index.view(-1, n_keys)[windows].flatten()
        crow = ridx.new_zeros(u + 1)
        torch.cumsum(torch.bincount(ridx, minlength=u), 0, out=crow[1:])
        with warnings.catch_warnings():  # "sparse CSR support is in beta": an internal, tested use
            warnings.simplefilter('ignore', UserWarning)
            per_index[key] = torch.sparse_csr_tensor(crow, torch.argsort(ridx, stable=True),
                                                     torch.ones(ridx.numel(), device=ridx.device), (u, ridx.numel()))
    return per_index[key]


def _add_bias_grads(grad_rows_hm: torch.Tensor, sums: torch.Tensor, ridx: torch.Tensor, grad_t: torch.Tensor) -> None:
    """Add the transposed logits' gradient ``grad_t`` (heads, nWc, N, s2) into the head-major bias rows' gradient
    (heads * U, s2): one sparse product (``sums``, :func:`_bias_sum_matrix`) per head, or, in dtypes the sparse
    kernel lacks (bf16, fp16), a scatter by the head-major rows ``ridx``."""
    heads, s2 = grad_t.shape[0], grad_t.shape[-1]
    if grad_t.dtype not in (torch.float32, torch.float64):
        scatter_add_rows(grad_rows_hm, ridx, grad_t.view(-1, s2))
        return
    grad_rows = grad_rows_hm.view(heads, -1, s2)
    sums = sums.to(grad_t.dtype)
    for h in range(heads):
        torch.addmm(grad_rows[h], sums, grad_t[h].view(-1, s2), out=grad_rows[h])


def _with_column(name: str, values: torch.Tensor, column: Union[float, torch.Tensor]) -> torch.Tensor:
    """``values`` (..., d) with ``column`` (a number or (...)) beside it as channel d, in the reused buffer
    ``name`` (..., d + 1): a GEMM over d + 1 channels then adds the column's products to the logits."""
    out = scratch.get(name, values.shape[:-1] + (values.shape[-1] + 1,), values)
    out[..., :-1] = values
    out[..., -1] = column
    return out


class FocalV2Core(torch.autograd.Function):
    """Training attention on CPU from one row of projections per token to the attention output per token.

    ``q_rows`` (B, T, C) holds the query projections of the map's T real tokens (row-major), ``kv_rows``
    (B, T + P, 2C) the key/value projections of those tokens, then of the P pooled window tokens (contiguous
    apart: a gradient scattered into rows of a strided (B, R, 3C) tensor took 3x as long); the output is
    (B * T + 1, C), row-major, before the output projection, its last row the dropped pad queries' (their
    gradient is zero, so they add nothing to any other). So no window partition of the queries, crop and
    concatenation of the key/value sources or window reverse is copied, nor copied and zero-filled again by
    their backward passes. Autograd through the gather, the bias lookup and SDPA would also keep every
    window's gathered keys, biases and probabilities until the backward pass. Here PyTorch's CPU flash kernel
    runs forward piece by piece and only its log-sum-exp is kept; backward gathers the keys again (from
    head-major copies with a column of ones, built once) and recomputes the probabilities per piece, transposed
    (keys by queries) and head-major, so the bias rows, in a (heads * U, s2) copy, are gathered straight into the
    logits, the GEMM adds k.q * scale - lse to them (the ones beside the keys, -lse beside the queries), another
    gives dP - rowsum(dP * P) at once (ones beside the values, minus that sum beside the output gradients), and
    the logits' gradient is summed back into the bias rows as it is (with one image; with more, added up over
    the images first) by a cached sparse product (:func:`_bias_sum_matrix`). Each query's gradient is written to
    its row, the key/value gradients are scattered to theirs (:func:`~mmfocal.ops.scatter_add_rows`).
    (Against the key-major layout with a subtraction of lse and a transposed copy of the bias gradient, the
    training step of one 800x1333 image took 0.905x as long, median of 6 alternating pairs, 2026-12-06; at
    two images of 512² and eight of 224² 1.015x and 0.977x.)
    """

    @staticmethod
    def forward(ctx, q_rows: torch.Tensor, kv_rows: torch.Tensor, rows: torch.Tensor, slots: torch.Tensor,
                index: torch.Tensor, bias_index: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
        b, t, c = q_rows.shape
        s2 = rows.shape[2]
        nw = slots.numel() // s2
        n_keys = index.numel() // nw
        out = q_rows.new_empty(b * t + 1, c)
        out[-1].zero_()  # finite where no pad query writes it: its zero gradient times it is the backward's 0
        lse = q_rows.new_empty(b, nw, heads, s2, dtype=accumulate_dtype(q_rows.dtype))
        parts = _window_pieces(nw, n_keys, 2 * c, heads, s2, q_rows)
        flash = flash_cpu_op()
        for windows in parts:
            dst, idx, ridx = _piece_rows(slots, index, bias_index, s2, windows)
            read, writes = _query_rows(dst, t, b)
            mask = _mask(_key_biases(rows, ridx, n_keys))
            for i in range(b):
                o, m = _attend_piece(q_rows[i], kv_rows[i], read, idx, mask, heads, scale, flash, need_lse=True)
                out.index_copy_(0, writes[i], o.transpose(1, 2).reshape(-1, c))
                lse[i, windows] = m
        ctx.save_for_backward(q_rows, kv_rows, rows, slots, index, bias_index, out, lse)
        ctx.heads, ctx.scale, ctx.pieces = heads, scale, parts
        return out

    @staticmethod
    @once_differentiable  # a second derivative: autograd's one clear error, not a failure inside this backward
    def backward(ctx, grad_out: torch.Tensor) -> tuple:
        q_rows, kv_rows, rows, slots, index, bias_index, out, lse = ctx.saved_tensors
        b, t, c = q_rows.shape
        heads, scale = ctx.heads, ctx.scale
        u, s2, d = rows.shape[0], rows.shape[2], c // heads
        nw = slots.numel() // s2
        n_keys = index.numel() // nw
        grad_out = grad_out.contiguous()  # (B * T + 1, C): the pad queries' row is zero
        delta = (grad_out * out).view(-1, heads, d).sum(-1)  # rowsum(dP * P) == rowsum(dO * O)
        grad_q_rows = q_rows.new_empty(b * t + 1, c)  # each real query is one row, written once
        grad_kv_rows = torch.zeros_like(kv_rows)  # summed into
        # head-major keys and values with a column of ones, (2, heads * R, d + 1) per image, built once: a piece
        # gathers its (heads, windows, keys, d + 1) operands from them as they are (each token is a key of ~N / s2
        # windows: permuting the gathered rows per piece copied it that many times). The key/value gradients are
        # scattered by token rows (2C channels), which takes half as long as by head-major rows of d.
        n_kv = kv_rows.shape[1]
        kv_hm = _with_column('v2_kv_hm', kv_rows.view(b, n_kv, 2, heads, d).permute(0, 2, 3, 1, 4), 1.)
        kv_hm = kv_hm.view(b, 2, heads * n_kv, d + 1)
        kv_head_rows = torch.arange(heads, device=kv_rows.device).view(heads, 1) * n_kv
        # head-major bias rows (heads * U, s2): a piece's biases gather straight into its (heads, windows, keys,
        # queries) logits, and their gradients scatter straight back from the logits' gradient
        rows_hm = rows.transpose(0, 1).reshape(heads * u, s2)
        grad_rows_hm = torch.zeros_like(rows_hm)
        head_rows = torch.arange(heads, device=rows.device).view(heads, 1) * u
        for windows in ctx.pieces:
            nwc = windows.stop - windows.start
            dst, idx, ridx = _piece_rows(slots, index, bias_index, s2, windows)
            ridx = (head_rows + ridx.view(1, -1)).flatten()  # into the head-major rows
            idx_hm = (kv_head_rows + idx.view(1, -1)).flatten()
            read, writes = _query_rows(dst, t, b)
            shape_t = (heads, nwc, n_keys, s2)  # transposed probabilities: keys by queries, as the bias rows
            shape_kv = (heads, nwc, n_keys, d + 1)
            sums = _bias_sum_matrix(bias_index, windows, n_keys, u)
            # one image: its logits start as the gathered biases and their gradient is summed back as it is;
            # more: the biases are gathered once, copied per image, and the gradients added up first
            bias = None if b == 1 else gather_rows(rows_hm, ridx, 'v2_bias_hm').view(shape_t)
            for i in range(b):
                # (heads, windows, ., d + 1): keys with a column of ones, scaled queries with -lse, so the GEMM
                # adds k.q * scale - lse to the gathered biases: P^T = exp(k.q * scale + bias - lse)
                q = gather_rows(q_rows[i], read, 'v2_q').view(nwc, s2, heads, d)
                q_aug = scratch.get('v2_q_aug', (heads, nwc, s2, d + 1), out)
                torch.mul(q.permute(2, 0, 1, 3), scale, out=q_aug[..., :d])
                q_aug[..., d] = lse[i, windows].transpose(0, 1)
                q_aug[..., d].neg_()
                k_aug = gather_rows(kv_hm[i, 0], idx_hm, 'v2_k_aug').view(shape_kv)
                # likewise values with a column of ones and output gradients with -delta: dP^T - delta in one GEMM
                v_aug = gather_rows(kv_hm[i, 1], idx_hm, 'v2_v_aug').view(shape_kv)
                grad_o = gather_rows(grad_out, writes[i], 'v2_grad_o_rows').view(nwc, s2, heads, d)
                neg_delta = delta.index_select(0, writes[i]).neg_().view(nwc, s2, heads).permute(2, 0, 1)
                grad_o_aug = _with_column('v2_grad_o_aug', grad_o.permute(2, 0, 1, 3), neg_delta)
                grad_o = grad_o_aug[..., :d]
                attn = gather_rows(rows_hm, ridx, 'v2_attn').view(shape_t) if bias is None else \
                    scratch.get('v2_attn', shape_t, out).copy_(bias)
                attn.view(-1, n_keys, s2).baddbmm_(k_aug.view(-1, n_keys, d + 1),
                                                   q_aug.view(-1, s2, d + 1).transpose(1, 2))
                attn.exp_()
                # head-major key and value gradients, laid out by token rows in one copy (two into the strided
                # halves took ~1.4x as long) and scattered to their rows
                grad_kv_hm = scratch.get('v2_grad_kv_hm', (2, heads, nwc, n_keys, d), out)
                torch.matmul(attn, grad_o, out=grad_kv_hm[1])
                grad_attn = torch.matmul(v_aug, grad_o_aug.transpose(-1, -2),
                                         out=scratch.get('v2_grad_attn', shape_t, out))
                grad_attn.mul_(attn)  # dS^T, the gradient of the biased logits
                grad_q = torch.matmul(grad_attn.transpose(-1, -2), k_aug[..., :d],
                                      out=scratch.get('v2_grad_q', (heads, nwc, s2, d), out))
                grad_q_rows.index_copy_(0, writes[i], grad_q.mul_(scale).permute(1, 2, 0, 3).reshape(-1, c))
                torch.matmul(grad_attn, q_aug[..., :d], out=grad_kv_hm[0])
                grad_kv = scratch.get('v2_grad_kv', (nwc, n_keys, 2, heads, d), out)
                grad_kv.copy_(grad_kv_hm.permute(2, 3, 0, 1, 4))
                scatter_add_rows(grad_kv_rows[i], idx, grad_kv.view(idx.numel(), -1))
                if bias is None:
                    _add_bias_grads(grad_rows_hm, sums, ridx, grad_attn)
                elif i == 0:
                    grad_bias = scratch.get('v2_grad_bias', shape_t, out).copy_(grad_attn)
                else:
                    grad_bias.add_(grad_attn)
            if bias is not None:
                _add_bias_grads(grad_rows_hm, sums, ridx, grad_bias)
        grad_rows = grad_rows_hm.view(heads, u, s2).transpose(0, 1)
        return grad_q_rows[:b * t].view(b, t, c), grad_kv_rows, grad_rows, None, None, None, None, None


def focal_v2_training(q_rows: torch.Tensor, kv_rows: torch.Tensor, slots: torch.Tensor, index: torch.Tensor,
                      rows: torch.Tensor, bias_index: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """The CORE path (:class:`FocalV2Core`): attention output (B, T, C) per real token, row-major.

    Args:
        q_rows: (B, T, C) the query projections of the map's T real tokens.
        kv_rows: (B, T + P, 2C) the key/value projections of those tokens, then of the P pooled tokens.
        slots: (nW * s2,) long, the row of every query of every window (T for a pad query).
        index: (nW * N,) long, the row of every key of every window.
        rows: (U, h, s2) bias rows (:func:`bias_rows`).
        bias_index: (nW * N,) long, the bias row of every key of every window.
        heads: Attention heads.
        scale: Attention scale.
    """
    needs_grad = [t for t in (rows, q_rows, kv_rows) if t.requires_grad]
    if needs_grad:
        scratch.keep_until_backward(needs_grad[0])
    b, t, c = q_rows.shape
    out = FocalV2Core.apply(q_rows.contiguous(), kv_rows.contiguous(), rows.contiguous(), slots, index, bias_index,
                            heads, scale)
    return out[:b * t].view(b, t, c)


def focal_v2_inference(qkv_rows: torch.Tensor, t: int, slots: torch.Tensor, index: torch.Tensor, rows: torch.Tensor,
                       bias_index: torch.Tensor, heads: int, scale: float, proj_weight: torch.Tensor,
                       proj_bias: Optional[torch.Tensor]) -> torch.Tensor:
    """Inference from the qkv projections to the output projection, a few windows at a time; (B, T, C).

    Queries and keys are gathered per piece from one row per token, the attention output is projected and
    written to its token: no whole-map window partition, key/value concatenation or window reverse.

    Args:
        qkv_rows: (B, T + P, 3C) the qkv projections of the map's T real tokens (row-major), then the key/value
            projections (channels C:) of the P pooled windows; the pooled rows' first C channels are unused.
        t: The number T of real tokens.
        slots: (nW * s2,) long, the row of every query of every window, T for a pad query
            (:func:`~mmfocal.models.layers.focal_geometry.focal_v2_token_rows`).
        index: (nW * N,) long, the row of every key of every window.
        rows: (U, h, s2) bias rows (:func:`bias_rows`).
        bias_index: (nW * N,) long, the bias row of every key of every window
            (:func:`~mmfocal.models.layers.focal_geometry.focal_v2_bias_rows`).
        heads: Attention heads.
        scale: Attention scale.
        proj_weight: (C, C) output projection weight.
        proj_bias: (C,) output projection bias or None.

    Returns:
        The projected output of every real token (B, T, C), row-major.
    """
    b, c = qkv_rows.shape[0], qkv_rows.shape[-1] // 3
    s2 = rows.shape[2]
    nw = slots.numel() // s2
    n_keys = index.numel() // nw
    rows = rows.contiguous()
    proj_weight = proj_weight.to(qkv_rows.dtype)  # in the activations' dtype, as autocast runs the module
    proj_bias = None if proj_bias is None else proj_bias.to(qkv_rows.dtype)
    out = qkv_rows.new_empty(b * t + 1, c)  # the last row takes the pad queries' outputs
    flash = flash_cpu_op() if qkv_rows.device.type == 'cpu' else None
    for windows in _window_pieces(nw, n_keys, 2 * c, heads, s2, qkv_rows):
        dst, idx, ridx = _piece_rows(slots, index, bias_index, s2, windows)
        read, writes = _query_rows(dst, t, b)
        mask = _mask(_key_biases(rows, ridx, n_keys))
        for i in range(b):
            o = _attend_piece(qkv_rows[i, :t, :c], qkv_rows[i, :, c:], read, idx, mask, heads, scale, flash)[0]
            o = o.transpose(1, 2).reshape(-1, c)  # a view of the flash op's (windows, s2, heads, d) output
            proj = scratch.get('v2_proj', (o.shape[0], c), qkv_rows)
            proj = torch.mm(o, proj_weight.t(), out=proj) if proj_bias is None else \
                torch.addmm(proj_bias, o, proj_weight.t(), out=proj)
            out.index_copy_(0, writes[i], proj)
    return out[:b * t].view(b, t, c)


def _autograd(q: torch.Tensor, src: torch.Tensor, table: torch.Tensor, index: torch.Tensor,
              query_code: torch.Tensor, key_code: torch.Tensor, scale: float) -> torch.Tensor:
    """Training through autograd: a window batch per image (the bias is per window, shared by the images)."""
    b, nw, heads, s2, d = q.shape
    n_keys = key_code.shape[-1]
    bias = lookup_bias(table, query_code, key_code)
    outs = []
    for i in range(b):
        kv = src[i].index_select(0, index).view(nw, n_keys, 2, heads, d)
        outs.append(F.scaled_dot_product_attention(q[i], kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2),
                                                   attn_mask=bias, scale=scale))
    return torch.stack(outs).transpose(2, 3)


def focal_v2_attention(q: torch.Tensor, src: torch.Tensor, table: torch.Tensor, index: torch.Tensor,
                       query_code: torch.Tensor, key_code: torch.Tensor, scale: float) -> torch.Tensor:
    """The AUTOGRAD path (:func:`~mmfocal.ops.choose_path`): (B, nW, s2, C) before the output projection.

    Standard operators over whole maps, what ``torch.compile`` traces; the CORE path is
    :func:`focal_v2_training`, the FUSED path :func:`focal_v2_inference`.

    Args:
        q: (B, nW, h, s2, d) queries.
        src: (B, T, 2C) key/value sources.
        table: (h, offsets) position bias per distinct offset.
        index: (nW * N,) long, the source of every key.
        query_code: (nW, s2, 1) int32 and ``key_code`` (nW, 1, N) int32: the table entry of a pair is their
            difference.
        scale: Attention scale.
    """
    b, nw, heads, s2, d = q.shape
    # the layers build the table offsets-major and hand over its transpose: gathers from it and the scatter of
    # its gradient run 3-4x slower on that strided layout than on a contiguous copy (a few thousand entries)
    out = _autograd(q, src, table.contiguous(), index, query_code, key_code, scale)
    return out.reshape(b, nw, s2, heads * d)
