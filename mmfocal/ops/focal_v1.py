"""Focal attention (v1): one gather of every key of a window, a fused kernel, a hand-written backward.

:class:`mmfocal.models.layers.FocalAttention` calls :func:`focal_v1_attention` with the path
:func:`~mmfocal.ops.choose_path` picked; underneath:

* :func:`pack_qkv` lays the qkv projections out as queries by window and key/value *sources*
  (one row per token), the border mask riding along as an extra channel where whole maps are gathered at once
  (:func:`mask_channel`);
* :func:`fused_attention` (inference) gathers each piece of windows and runs
  ``scaled_dot_product_attention`` or PyTorch's CPU flash op on it, on CPU with the border mask added to the
  position bias per piece;
* :class:`FocalAttentionCore` (training) is the same from the qkv projections to the output, saving the
  sources rather than the gathered keys and gathering again in backward.

CPU loops run in pieces of window rows (:func:`~mmfocal.ops.pieces`) with per-thread reusable buffers
(:data:`~mmfocal.ops.scratch`).
"""

from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .dispatch import AttentionPath
from .scratch import gather_rows, pieces, scatter_add_rows, scratch
from .settings import flash_cpu_op

__all__ = ['AttentionGeometry', 'FocalAttentionCore', 'accumulate_dtype', 'explicit_attention', 'focal_v1_attention',
           'fused_attention', 'mask_channel', 'pack_qkv']


def _row_pieces(q: torch.Tensor, n_keys: int, grid: Tuple[int, int]) -> List[slice]:
    """The pieces of the attention loops: slices of window rows (:func:`~mmfocal.ops.pieces`)."""
    b, h, nw, s2, dk = q.shape
    nwh, nww = grid
    row_bytes = nww * h * n_keys * (4 * dk + 2 * s2) * q.element_size()
    return pieces(nwh, row_bytes, q.device)


def _window_pieces(q: torch.Tensor, n_keys: int, grid: Tuple[int, int]) -> List[Tuple[int, slice]]:
    """(image, slice of window rows) pairs: every image's :func:`_row_pieces`."""
    return [(i, rows) for i in range(q.shape[0]) for rows in _row_pieces(q, n_keys, grid)]


def _window_slice(rows: slice, nww: int) -> slice:
    """The flat window indices of a slice of window rows."""
    return slice(rows.start * nww, rows.stop * nww)


def _gather_windows(src: torch.Tensor, index: torch.Tensor, image: int, windows: slice,
                    n_keys: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Keys and values of some windows of one image for the fused kernels, (nWc, h, N, dk) each.

    Sources are (B, T, 2, h, dk): one row per source token with the keys and values of all heads, so
    the gather copies long rows (much faster than gathering per head); the fused kernels take the
    strided (windows, heads, keys, dk) views as they are.
    """
    idx = index.view(-1, n_keys)[windows].reshape(-1)
    kv = gather_rows(src[image].view(src.shape[1], -1), idx, 'kv')
    kv = kv.view(-1, n_keys, *src.shape[2:])  # (nWc, N, 2, h, dk)
    return kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)


def _gather_kv(src: torch.Tensor, index: torch.Tensor, n_keys: int) -> torch.Tensor:
    """Every key of every window as contiguous matrices: (B, T, 2, h, dk) -> (2, B, h, nW, N, dk).

    Gathered by token rows, then laid out head-major: ``index_select`` along an inner dimension
    first copies its whole source, which costs far more than the gather itself.
    """
    b, n_src, two, h, dk = src.shape
    rows = src.view(b, n_src, -1).index_select(1, index)
    return rows.view(b, -1, n_keys, two, h, dk).permute(3, 0, 4, 1, 2, 5).contiguous()


def accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """Softmax / log-sum-exp precision: fp32 for fp16 and bf16, otherwise the tensors' own dtype."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float,
                       prefix: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(out, lse)`` of a piece through its logits in reused buffers: what the CPU flash op returns.

    For torch builds without that op (< 2.4): the (..., s2, N) logits live only until the output is computed,
    and the log-sum-exp (fp32 for fp16 / bf16) lets the training cores' backward recompute the probabilities.

    Args:
        q: (..., s2, dk) queries; ``k`` / ``v`` (..., N, dk) keys and values (strided views are copied).
        mask: Additive mask broadcastable to (..., s2, N).
        scale: Attention scale.
        prefix: Scratch-buffer name prefix (the backward pass's buffers of the same names are reused).

    Returns:
        ``out`` (..., s2, dk), a view of a reused buffer, and ``lse`` (..., s2).
    """
    s2, dk, n_keys = q.shape[-2], q.shape[-1], k.shape[-2]
    q_s = torch.mul(q, scale, out=scratch.get(prefix + 'q_s', q.shape, q))
    k = scratch.get(prefix + 'k', k.shape, q).copy_(k)
    v = scratch.get(prefix + 'v', v.shape, q).copy_(v)
    logits = scratch.get(prefix + 'attn', q.shape[:-1] + (n_keys, ), q).copy_(mask)
    logits.view(-1, s2, n_keys).baddbmm_(q_s.view(-1, s2, dk), k.view(-1, n_keys, dk).transpose(1, 2))
    top = logits.amax(dim=-1, keepdim=True)
    weights = logits.sub_(top).exp_()  # one exp per logit; normalised after the product, on (s2, dk) only
    total = weights.sum(dim=-1, keepdim=True, dtype=accumulate_dtype(q.dtype))
    out = torch.matmul(weights, v, out=scratch.get(prefix + 'out', q.shape[:-1] + v.shape[-1:], q))
    out.div_(total.to(out.dtype))
    return out, (top.to(total.dtype) + total.log()).squeeze(-1)


class AttentionGeometry(NamedTuple):
    """Shapes and gather tables of one fast attention call (all derived from the padded map size)."""

    grid: Tuple[int, int]  # windows (nWh, nWw)
    window: int  # window side s
    heads: int
    head_dims: int  # d
    channels: int  # dk, query/key channels per head: d, plus one where the border mask rides along (mask_channel)
    pad: int  # zero padding p of the pooled grid
    n_keys: int  # keys per window N
    index: torch.Tensor  # (nW * N,) source of every key of every window
    mask: Optional[torch.Tensor]  # (T,) 0 / FAST_MASK_VALUE per source token, or None
    key_mask: Optional[torch.Tensor]  # (nW, 1, N) the same per key of every window (mask[index]), or None
    first_masked: int  # the first key slot masked in any window (only pooled keys can be); N when none is
    scale: float


def mask_channel(path: AttentionPath, device: torch.device) -> bool:
    """Whether the border mask rides along as an extra query/key channel (``channels = d + 1``).

    It does where whole maps are gathered at once: on the AUTOGRAD path, and off the CPU, where the loops run as
    one piece and the core keeps the probabilities (:func:`_keeps_lse`); a mask per window would be a (windows,
    heads, s2, N) tensor of the whole map there. The CPU piece loops (FUSED, the core) add it per piece to the
    position bias instead and run at d channels: the CPU flash kernel took 8-12% longer at 33 channels than at 32
    with a per-window mask, and 33-wide rows slow every copy and GEMM of a piece (2026-12-06).
    """
    return path is AttentionPath.AUTOGRAD or not _keeps_lse(device)


def pack_qkv(qkv: torch.Tensor, kv_pooled: Optional[torch.Tensor], g: AttentionGeometry,
             qkv_bias: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Queries by window and the key/value sources of one attention call.

    Args:
        qkv: (B, Hp, Wp, 3C) projections of the padded map.
        kv_pooled: (B, nWh, nWw, 2C) key/value projections of the pooled tokens, or None.
        g: The call's geometry.
        qkv_bias: (3C,) the qkv layer's bias when ``qkv`` was projected without it: added while the projections
            are laid out, which saves ``addmm``'s pass that copies the bias into its whole output first.

    Returns:
        q (B, h, nW, s2, dk) head-major, so the kernels see (windows, heads) batches of matrices, and
        sources (B, T, 2, h, dk): the Hp*Wp tokens then the zero-padded pooled grid, keys and values of
        all heads in one row per token. With ``dk = d + 1`` (:func:`mask_channel`) the border mask, which
        varies per window while the position bias is shared by all windows, rides along as the extra (last)
        channel of the sources against a query channel of 1/scale, so q.k * scale adds it exactly.
    """
    b, hp, wp, _ = qkv.shape
    (nwh, nww), s, h, d, dk, p = g.grid, g.window, g.heads, g.head_dims, g.channels, g.pad
    n_fine = hp * wp
    qkv = qkv.view(b, nwh, s, nww, s, 3, h, d)
    q = qkv.new_empty(b, h, nwh, nww, s, s, dk)
    n_src = n_fine + (0 if kv_pooled is None else (nwh + 2 * p) * (nww + 2 * p))
    src = qkv.new_empty(b, n_src, 2, h, dk)
    q_proj, kv_proj = qkv[..., 0, :, :].permute(0, 5, 1, 3, 2, 4, 6), qkv.view(b, n_fine, 3, h, d)[:, :, 1:]
    if qkv_bias is None:
        q[..., :d] = q_proj
        src[:, :n_fine, :, :, :d] = kv_proj
    else:
        qkv_bias = qkv_bias.to(qkv.dtype).view(3, h, d)
        torch.add(q_proj, qkv_bias[0].view(h, 1, 1, 1, 1, d), out=q[..., :d])
        torch.add(kv_proj, qkv_bias[1:], out=src[:, :n_fine, :, :, :d])
    if kv_pooled is not None:
        src[:, n_fine:, :, :, :d] = F.pad(kv_pooled, (0, 0, p, p, p, p)).view(b, -1, 2, h, d)
    if dk > d:
        q[..., d] = 1. / g.scale
        src[..., d] = g.mask.to(src.dtype)[:, None, None]  # v's copy of it only reaches a dropped channel
    return q.view(b, h, nwh * nww, s * s, dk), src


def _piece_mask(bias: torch.Tensor, g: AttentionGeometry, windows: slice) -> torch.Tensor:
    """The attention mask of a piece of windows: the bias plus each window's border mask, (nWc, h, s2, N) in a
    reused buffer (built once for all images of the batch); the shared position bias (1, h, s2, N) where nothing
    is masked or the mask rides along as a channel. (Every piece of window rows holds border windows: the first
    and last columns read the pooled padding.)"""
    if g.key_mask is None or g.channels > g.head_dims:
        return bias
    border = g.key_mask[windows]
    mask = scratch.get('mask', (border.shape[0], ) + bias.shape[1:], bias)
    return torch.add(bias, border.to(bias.dtype)[:, :, None], out=mask)


def fused_attention(q: torch.Tensor, src: torch.Tensor, bias: torch.Tensor, g: AttentionGeometry,
                    lse: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Attention through a fused kernel, piece by piece: no (windows, heads, s2, N) logits are stored.

    Without ``lse``, ``scaled_dot_product_attention`` (on CPU its flash kernel for these strided
    (windows, heads) views: faster than matmul + softmax); with it, PyTorch's CPU flash op (or, without it,
    :func:`explicit_attention`), whose log-sum-exp is written into ``lse`` (B, h, nW, s2) for the backward pass.
    Without the mask channel each piece's mask is :func:`_piece_mask`.

    Args:
        q: (B, h, nW, s2, dk) queries; src: (B, T, 2, h, dk) key/value sources (see :func:`pack_qkv`).
        bias: (1, h, s2, N) position bias shared by all windows.
        g: The call's geometry.
        lse: Output buffer for the log-sum-exp, or None.

    Returns:
        (B, Hp, Wp, C) attention output.
    """
    b, h = q.shape[:2]
    (nwh, nww), s, d = g.grid, g.window, g.head_dims
    out = q.new_empty(b, nwh, s, nww, s, h, d)
    flash = flash_cpu_op() if lse is not None else None
    for window_rows in _row_pieces(q, g.n_keys, g.grid):
        w = _window_slice(window_rows, nww)
        mask = _piece_mask(bias, g, w)
        for i in range(b):
            k, v = _gather_windows(src, g.index, i, w, g.n_keys)
            q_c = q[i, :, w].transpose(0, 1)  # (nWc, h, s2, dk), as are k, v (N keys) and the output
            if lse is None:
                o = F.scaled_dot_product_attention(q_c, k, v, attn_mask=mask, scale=g.scale)
            else:
                o, m = flash(q_c, k, v, 0., False, attn_mask=mask, scale=g.scale)[:2] if flash is not None else \
                    explicit_attention(q_c, k, v, mask, g.scale, '')
                lse[i, :, w] = m.transpose(0, 1)
            out[i, window_rows] = o[..., :d].view(-1, nww, h, s, s, d).permute(0, 3, 1, 4, 2, 5)
    return out.view(b, nwh * s, nww * s, h * d)


class FocalAttentionCore(torch.autograd.Function):
    """Focal attention from the qkv projections to the (B, Hp, Wp, C) output, with its own backward.

    Autograd through the gather and two matmuls would keep the gathered keys and values of every
    block until the backward pass (~220 per query where Swin has 49), and autograd through the
    packing of q and the sources would zero-fill and add gradient buffers of the whole map. Here the
    queries, the key sources (one entry per token) and the output are saved, plus, on CPU, the
    log-sum-exp (``keep_lse=True``: from PyTorch's flash kernel, or :func:`explicit_attention` where torch
    lacks it; the probabilities are recomputed piece by piece in backward) or, elsewhere, the probabilities.
    Backward gathers the keys again, scatters their gradients (:func:`~mmfocal.ops.scatter_add_rows`) and
    writes the qkv gradient directly. With ``keep_lse`` no (windows, heads, s2, N) tensor lives from forward
    to backward (docs/speed.md).
    """

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, kv_pooled: Optional[torch.Tensor], bias: torch.Tensor, g: AttentionGeometry,
                keep_lse: bool) -> torch.Tensor:
        # Autocast off inside: everything runs in the dtype of qkv (fp16/bf16 under autocast), so the
        # backward pass, which runs without autocast, sees the same dtypes; softmax at least in fp32.
        with torch.autocast(qkv.device.type, enabled=False):
            q, src = pack_qkv(qkv, kv_pooled, g)
            b, h, nw, s2, dk = q.shape
            (nwh, nww), s, d = g.grid, g.window, g.head_dims
            if keep_lse:
                saved = q.new_empty(b, h, nw, s2, dtype=accumulate_dtype(q.dtype))  # log-sum-exp
                out = fused_attention(q, src, bias[:, :, 0], g, lse=saved)
            else:
                kv = _gather_kv(src, g.index, g.n_keys)
                logits = torch.matmul(q * g.scale, kv[0].transpose(-1, -2)).add_(bias)
                saved = logits.softmax(dim=-1, dtype=accumulate_dtype(q.dtype)).to(q.dtype)  # probabilities
                o = torch.matmul(saved, kv[1])[..., :d].view(b, h, nwh, nww, s, s, d)
                out = o.permute(0, 2, 4, 3, 5, 1, 6).reshape(b, nwh * s, nww * s, h * d)
        ctx.save_for_backward(q, src, bias, out, saved)
        ctx.g, ctx.keep_lse, ctx.has_pooled = g, keep_lse, kv_pooled is not None
        return out

    @staticmethod
    @once_differentiable  # a second derivative: autograd's one clear error, not a failure inside this backward
    def backward(ctx, grad_out: torch.Tensor) -> tuple:
        q, src, bias, out, saved = ctx.saved_tensors
        g = ctx.g
        b, h, nw, s2, dk = q.shape
        (nwh, nww), s, d, n_keys = g.grid, g.window, g.head_dims, g.n_keys
        n_src, n_fine = src.shape[1], nwh * s * nww * s
        grad_out = grad_out.contiguous().view(b, nwh, s, nww, s, h, d)
        # softmax backward: dS = P * (dP - rowsum(dP * P)) and rowsum(dP * P) == rowsum(dO * O).
        delta = (grad_out * out.view(grad_out.shape)).sum(dim=-1)  # (B, nWh, s, nWw, s, h)
        grad_qkv = q.new_empty(b, nwh, s, nww, s, 3, h, d)
        grad_src = src.new_zeros(b, n_src, 2 * h * dk)
        grad_bias = q.new_zeros(h, s2, n_keys, dtype=accumulate_dtype(q.dtype))
        # the CPU core runs without the mask channel (mask_channel): the keys read from the pooled padding get
        # probability 0 here, what they have at the official -100 (at -50 they would come out of exp tiny but not
        # 0, and their gradients, products with other small numbers, reach float32's subnormal range, where CPU
        # GEMMs run ~100x slower; 2026-12-06)
        first = g.first_masked
        masked = g.key_mask[:, :, first:] != 0 if ctx.keep_lse and g.key_mask is not None else None
        for i, window_rows in _window_pieces(q, n_keys, g.grid):
            w = _window_slice(window_rows, nww)
            n_rows = window_rows.stop - window_rows.start
            idx = g.index.view(nw, n_keys)[w].reshape(-1)
            # by token rows, then head-major so each (head, window) has contiguous key matrices
            rows = gather_rows(src[i].view(n_src, -1), idx, 'kv_rows')
            kv = scratch.get('kv', (2, h, w.stop - w.start, n_keys, dk), q)
            kv.copy_(rows.view(-1, n_keys, 2, h, dk).permute(2, 3, 0, 1, 4))
            q_c = q[i, :, w] * g.scale
            grad_out_c = scratch.get('grad_out', q_c.shape, q)
            grad_out_c.view(h, n_rows, nww, s, s, dk)[..., :d] = grad_out[i, window_rows].permute(4, 0, 2, 1, 3, 5)
            grad_out_c[..., d:] = 0
            if ctx.keep_lse:
                attn = scratch.get('attn', q_c.shape[:-1] + (n_keys, ), q)
                torch.matmul(q_c, kv[0].transpose(-1, -2), out=attn)
                attn.add_(bias[0]).sub_(saved[i, :, w].unsqueeze(-1)).exp_()
                if masked is not None and bool(masked[w].any()):
                    attn[..., first:].masked_fill_(masked[w], 0.)  # (h, nWc, s2, N - first) by (nWc, 1, N - first)
            else:
                attn = saved[i, :, w]
            grad_kv = scratch.get('grad_kv', kv.shape, q)
            torch.matmul(attn.transpose(-1, -2), grad_out_c, out=grad_kv[1])
            grad_attn = torch.matmul(grad_out_c, kv[1].transpose(-1, -2), out=scratch.get('grad_attn', attn.shape, q))
            delta_c = delta[i, window_rows].permute(4, 0, 2, 1, 3).reshape(h, -1, s2, 1)
            grad_attn.sub_(delta_c).mul_(attn)
            grad_bias += grad_attn.sum(dim=1)
            grad_q = torch.matmul(grad_attn, kv[0]).mul_(g.scale)
            grad_q = grad_q[..., :d].view(h, n_rows, nww, s, s, d)
            grad_qkv[i, window_rows, :, :, :, 0] = grad_q.permute(1, 3, 2, 4, 0, 5)
            torch.matmul(grad_attn.transpose(-1, -2), q_c, out=grad_kv[0])
            # scattered by token rows too: cheaper, permute included, than along the head-major layout
            grad_rows = scratch.get('grad_rows', (w.stop - w.start, n_keys, 2, h, dk), q)
            grad_rows.copy_(grad_kv.permute(2, 3, 0, 1, 4))
            scatter_add_rows(grad_src[i], idx, grad_rows.view(-1, 2 * h * dk))
        grad_src = grad_src.view(b, n_src, 2, h, dk)[..., :d]
        grad_qkv[..., 1:, :, :] = grad_src[:, :n_fine].view(b, nwh, s, nww, s, 2, h, d)
        grad_pooled = None
        if ctx.has_pooled:
            p = g.pad
            pooled = grad_src[:, n_fine:].view(b, nwh + 2 * p, nww + 2 * p, 2, h, d)
            # the zero padding has no gradient to pass on
            grad_pooled = pooled[:, p:p + nwh, p:p + nww].reshape(b, nwh, nww, 2 * h * d)
        grad_bias = grad_bias.to(bias.dtype).view(1, h, 1, s2, n_keys)
        return grad_qkv.view(b, nwh * s, nww * s, 3 * h * d), grad_pooled, grad_bias, None, None


def _autograd(qkv: torch.Tensor, kv_pooled: Optional[torch.Tensor], bias: torch.Tensor,
              g: AttentionGeometry) -> torch.Tensor:
    """The fast path's formulation through standard operators and autograd: every key gathered at once."""
    q, src = pack_qkv(qkv, kv_pooled, g)
    b, h, nw, s2, dk = q.shape
    (nwh, nww), s, d = g.grid, g.window, g.head_dims
    kv = _gather_kv(src, g.index, g.n_keys)  # (2, B, h, nW, N, dk)
    logits = torch.matmul(q * g.scale, kv[0].transpose(-1, -2)) + bias
    attn = logits.softmax(dim=-1, dtype=accumulate_dtype(q.dtype)).to(q.dtype)
    o = torch.matmul(attn, kv[1])[..., :d].view(b, h, nwh, nww, s, s, d)
    return o.permute(0, 2, 4, 3, 5, 1, 6).reshape(b, nwh * s, nww * s, h * d)


def focal_v1_attention(qkv: torch.Tensor, kv_pooled: Optional[torch.Tensor], bias: torch.Tensor, g: AttentionGeometry,
                       path: AttentionPath, qkv_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Focal attention from the qkv projections to the (B, Hp, Wp, C) output, by ``path``.

    Args:
        qkv: (B, Hp, Wp, 3C) projections of the padded map.
        kv_pooled: (B, nWh, nWw, 2C) key/value projections of the pooled tokens, or None.
        bias: (1, h, 1, s2, N) position bias shared by all windows (repeated ring keys merged).
        g: The call's geometry.
        path: ``FUSED`` (no autograd), ``CORE`` (:class:`FocalAttentionCore`) or ``AUTOGRAD`` (standard
            operators, under ``torch.compile``), from :func:`~mmfocal.ops.choose_path`.
        qkv_bias: (3C,) the qkv layer's bias if ``qkv`` was projected without it (:func:`pack_qkv` adds it on the
            FUSED path), else None.
    """
    if g.mask is not None and (g.channels > g.head_dims) != mask_channel(path, qkv.device):
        raise ValueError(f'focal_v1_attention: the {path.name} path on {qkv.device.type} takes '
                         f'channels={g.head_dims + mask_channel(path, qkv.device)} (see mask_channel), '
                         f'got {g.channels}.')
    if path is AttentionPath.FUSED:
        q, src = pack_qkv(qkv, kv_pooled, g, qkv_bias)
        return fused_attention(q, src, bias[:, :, 0], g)
    if qkv_bias is not None:
        qkv = qkv + qkv_bias
    if path is AttentionPath.AUTOGRAD:
        return _autograd(qkv, kv_pooled, bias, g)
    if path is not AttentionPath.CORE:
        raise ValueError(f'focal_v1_attention runs the FUSED, CORE and AUTOGRAD paths, not {path}.')
    inputs = [t for t in (qkv, kv_pooled, bias) if t is not None and t.requires_grad]
    if inputs:
        scratch.keep_until_backward(inputs[0])
    return FocalAttentionCore.apply(qkv, kv_pooled, bias, g, _keeps_lse(qkv.device))


def _keeps_lse(device: torch.device) -> bool:
    """Whether the training core keeps the log-sum-exp (CPU: pieces in reused buffers) or the probabilities."""
    return device.type == 'cpu'
