"""Focal-fast (v2) attention: each window's nearest keys gathered from the key/value sources, a position bias
looked up per (query, key) pair in one table of distinct offsets, a fused kernel.

:class:`mmfocal.models.layers.FocalV2Attention` calls :func:`focal_v2_inference` without autograd (from one
row of qkv projections per padded token, see there) and :func:`focal_v2_attention` for training, with

* ``q`` (B, nW, h, s2, d) queries by window and ``src`` (B, T, 2C) key/value sources, one row per token
  (the real tokens of the map, then the pooled window tokens);
* ``index`` (nW * N,) the source of every key of every window;
* ``table`` (h, offsets) the position-bias MLPs evaluated once per distinct offset, and the codes that address
  it: the bias of key k of query q of window w is ``table[:, query_code[w, q] - key_code[w, k]]``.
"""

from typing import List, Optional

import torch
import torch.nn.functional as F

from .dispatch import AttentionPath
from .focal_v1 import accumulate_dtype
from .scratch import gather_rows, pieces, scatter_add_rows, scratch
from .settings import flash_cpu_op

__all__ = ['BiasLookup', 'FocalV2Core', 'focal_v2_attention', 'focal_v2_inference', 'lookup_bias']


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


def _window_pieces(n_windows: int, n_keys: int, kv_channels: int, heads: int, s2: int,
                   like: torch.Tensor) -> List[slice]:
    """Slices of windows whose gathered keys and biases fit a piece (:func:`~mmfocal.ops.pieces`)."""
    return pieces(n_windows, n_keys * (kv_channels + heads * s2) * like.element_size(), like.device)


def _gather_keys(src: torch.Tensor, image: int, idx: torch.Tensor, n_keys: int, heads: int) -> torch.Tensor:
    """Keys and values of some windows of one image: (nWc, N, 2, h, d), a view of a reused buffer."""
    return gather_rows(src[image], idx, 'v2_kv').view(-1, n_keys, 2, heads, src.shape[-1] // (2 * heads))


class FocalV2Core(torch.autograd.Function):
    """Training attention on CPU from queries, key/value sources and the bias table, with its own backward.

    Autograd through the gather, the bias lookup and SDPA's math path keeps the gathered keys, the biases and
    the probabilities of every window until the backward pass, and zero-fills whole-map gradient buffers. Here
    PyTorch's CPU flash kernel runs forward piece by piece and only its log-sum-exp is kept; backward gathers
    the keys and looks the biases up again, recomputes the probabilities per piece, scatters the key/value
    gradients to the source rows (:func:`~mmfocal.ops.scatter_add_rows`) and the bias gradients to the table
    (``scatter_add_``).
    """

    @staticmethod
    def forward(ctx, q: torch.Tensor, src: torch.Tensor, table: torch.Tensor, index: torch.Tensor,
                query_code: torch.Tensor, key_code: torch.Tensor, scale: float) -> torch.Tensor:
        b, nw, heads, s2, d = q.shape
        n_keys = key_code.shape[-1]
        out = q.new_empty(b, nw, heads, s2, d)
        lse = q.new_empty(b, nw, heads, s2, dtype=accumulate_dtype(q.dtype))
        parts = _window_pieces(nw, n_keys, src.shape[-1], heads, s2, src)
        for windows in parts:
            bias = table.index_select(1, (query_code[windows] - key_code[windows]).flatten())
            bias = bias.view(heads, -1, s2, n_keys).transpose(0, 1)
            idx = index.view(nw, n_keys)[windows].flatten()
            for i in range(b):
                kv = _gather_keys(src, i, idx, n_keys, heads)
                o, m = flash_cpu_op()(q[i, windows], kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2), 0.,
                                      False, attn_mask=bias, scale=scale)
                out[i, windows], lse[i, windows] = o, m
        ctx.save_for_backward(q, src, table, index, query_code, key_code, out, lse)
        ctx.scale, ctx.pieces = scale, parts
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple:
        q, src, table, index, query_code, key_code, out, lse = ctx.saved_tensors
        b, nw, heads, s2, d = q.shape
        n_keys, scale = key_code.shape[-1], ctx.scale
        grad_out = grad_out.contiguous()
        delta = (grad_out * out).sum(-1, keepdim=True)  # rowsum(dP * P) == rowsum(dO * O)
        grad_q = torch.empty_like(q)
        grad_src = torch.zeros_like(src)
        grad_table = torch.zeros_like(table)
        for windows in ctx.pieces:
            code = (query_code[windows] - key_code[windows]).flatten()
            bias = table.index_select(1, code).view(heads, -1, s2, n_keys).transpose(0, 1)
            idx = index.view(nw, n_keys)[windows].flatten()
            grad_bias = None
            for i in range(b):
                kv = _gather_keys(src, i, idx, n_keys, heads)
                nwc = kv.shape[0]
                # per-head contiguous keys and values: each is read by two GEMMs, which would copy a strided one
                k = scratch.get('v2_k', (nwc, heads, n_keys, d), q).copy_(kv[:, :, 0].transpose(1, 2))
                v = scratch.get('v2_v', (nwc, heads, n_keys, d), q).copy_(kv[:, :, 1].transpose(1, 2))
                q_s, grad_o = q[i, windows] * scale, grad_out[i, windows]
                # probabilities exp(q.k * scale + bias - lse): the bias minus lse is the GEMM's accumulator
                attn = torch.sub(bias, lse[i, windows].unsqueeze(-1), out=scratch.get('v2_attn', bias.shape, q))
                attn.view(-1, s2, n_keys).baddbmm_(q_s.view(-1, s2, d), k.view(-1, n_keys, d).transpose(1, 2))
                attn.exp_()
                grad_kv = scratch.get('v2_grad_kv', (nwc, n_keys, 2, heads, d), q)
                grad_kv[:, :, 1] = torch.matmul(attn.transpose(-1, -2), grad_o).transpose(1, 2)
                grad_attn = torch.matmul(grad_o, v.transpose(-1, -2))
                grad_attn.sub_(delta[i, windows]).mul_(attn)  # dS, the gradient of the biased logits
                grad_bias = grad_attn if grad_bias is None else grad_bias.add_(grad_attn)
                grad_q[i, windows] = torch.matmul(grad_attn, k).mul_(scale)
                grad_kv[:, :, 0] = torch.matmul(grad_attn.transpose(-1, -2), q_s).transpose(1, 2)
                scatter_add_rows(grad_src[i], idx, grad_kv.view(idx.numel(), -1))
            grad_bias = grad_bias.transpose(0, 1).reshape(heads, -1)
            grad_table.scatter_add_(1, code.long().expand_as(grad_bias), grad_bias)
        return grad_q, grad_src, grad_table, None, None, None, None


def focal_v2_inference(rows: torch.Tensor, slots: torch.Tensor, index: torch.Tensor, table: torch.Tensor,
                       query_code: torch.Tensor, key_code: torch.Tensor, heads: int, scale: float,
                       proj_weight: torch.Tensor, proj_bias: Optional[torch.Tensor]) -> torch.Tensor:
    """Inference from the qkv projections to the output projection, a few windows at a time; (B, R0, C).

    Queries and keys are gathered per piece from one row per token, the attention output is projected and
    written to its token: no whole-map window partition, key/value concatenation or window reverse.

    Args:
        rows: (B, R, 3C) the qkv projections of the padded map's R0 tokens (row-major), then the key/value
            projections (channels C:) of the pooled windows; the pooled rows' first C channels are unused.
        slots: (nW * s2,) long, the row of every query of every window
            (:func:`~mmfocal.models.layers.focal_geometry.focal_v2_padded_rows`).
        index: (nW * N,) long, the row of every key of every window.
        table: (h, offsets) position bias per distinct offset.
        query_code: (nW, s2, 1) int32 and ``key_code`` (nW, 1, N) int32 (:func:`focal_v2_attention`).
        heads: Attention heads.
        scale: Attention scale.
        proj_weight: (C, C) output projection weight.
        proj_bias: (C,) output projection bias or None.

    Returns:
        The projected output of every padded token (B, R0, C), row-major.
    """
    b, c = rows.shape[0], rows.shape[-1] // 3
    nw, s2, n_keys = query_code.shape[0], query_code.shape[1], key_code.shape[-1]
    d = c // heads
    table = table.contiguous()
    out = rows.new_empty(b, slots.numel(), c)
    flash = flash_cpu_op() if rows.device.type == 'cpu' else None
    for windows in _window_pieces(nw, n_keys, 2 * c, heads, s2, rows):
        bias = table.index_select(1, (query_code[windows] - key_code[windows]).flatten())
        bias = bias.view(heads, -1, s2, n_keys).transpose(0, 1)
        idx = index.view(nw, n_keys)[windows].flatten()
        dst = slots.view(nw, s2)[windows].flatten()
        for i in range(b):
            q = gather_rows(rows[i, :, :c], dst, 'v2_q').view(-1, s2, heads, d).transpose(1, 2)
            kv = gather_rows(rows[i, :, c:], idx, 'v2_kv').view(-1, n_keys, 2, heads, d)
            k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
            if flash is not None:
                o = flash(q, k, v, 0., False, attn_mask=bias, scale=scale)[0]
            else:
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
            o = o.transpose(1, 2).reshape(-1, c)  # a view of the flash op's (windows, s2, heads, d) output
            proj = scratch.get('v2_proj', (o.shape[0], c), rows)
            proj = torch.mm(o, proj_weight.t(), out=proj) if proj_bias is None else \
                torch.addmm(proj_bias, o, proj_weight.t(), out=proj)
            out[i].index_copy_(0, dst, proj)
    return out


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
                       query_code: torch.Tensor, key_code: torch.Tensor, scale: float,
                       path: AttentionPath) -> torch.Tensor:
    """Focal-fast attention by ``path``: (B, nW, s2, C) before the output projection.

    Args:
        q: (B, nW, h, s2, d) queries.
        src: (B, T, 2C) key/value sources.
        table: (h, offsets) position bias per distinct offset.
        index: (nW * N,) long, the source of every key.
        query_code: (nW, s2, 1) int32 and ``key_code`` (nW, 1, N) int32: the table entry of a pair is their
            difference.
        scale: Attention scale.
        path: ``CORE`` or ``AUTOGRAD`` (:func:`~mmfocal.ops.choose_path`).
    """
    # the layers build the table offsets-major and hand over its transpose: gathers from it and the scatter of
    # its gradient run 3-4x slower on that strided layout than on a contiguous copy (a few thousand entries)
    table = table.contiguous()
    args = (q, src, table, index, query_code, key_code, scale)
    b, nw, heads, s2, d = q.shape
    if path is AttentionPath.CORE:
        if table.requires_grad:
            scratch.keep_until_backward(table)
        out = FocalV2Core.apply(q.contiguous(), *args[1:]).transpose(2, 3)
    elif path is AttentionPath.AUTOGRAD:
        out = _autograd(*args)
    else:
        raise ValueError(f'focal_v2_attention runs the CORE and AUTOGRAD paths, not {path} '
                         '(FUSED is focal_v2_inference, REFERENCE the layer\'s own formulation).')
    return out.reshape(b, nw, s2, heads * d)
