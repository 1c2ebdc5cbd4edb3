"""Focal-fast ("v2") attention and block: each window attends its K nearest tokens of every focal level.

Official code: ``classification/focal_transformer_v2.py`` of microsoft/Focal-Transformer. Its attention has
no rolls or unfolds: the keys of a window are

* level 0: the ``topk`` tokens of the whole map nearest (Euclidean) to the window's centre,
* level 1: the ``topk`` fc-pooled window tokens nearest to the window (in window-grid units),

and the position bias of a (query, key) pair is a small MLP (``coord2rpb_all.{level}``) of their relative
coordinate in token units (a pooled token sits at its window's centre). The official model computes the
nearest-key indices once, for the size it is built for, so it runs only there (every stage map a multiple
of the window size). Here they are computed per map size, with exactly the official procedure, and cached.

"Nearest" at any size (what :func:`nearest_keys` computes):

* Windows tile the map from the top-left corner; the last row/column of windows may reach past the map
  (their pad queries are computed and dropped). A window's centre is ``s * index + s // 2``.
* Level-0 candidates are the real tokens of the map only (never padding); level-1 candidates are all
  windows (a border window's pooled token is the fc-pooling of its real tokens and zeros).
* With fewer candidates than ``topk`` (small maps), every candidate is a key.
* Ties at the K-th distance are broken by ``torch.topk`` on CPU over the whole row of candidates, the
  official call, so where the official code runs (a multiple-of-s map) the keys are the official ones.
"""

import math
from collections import OrderedDict
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import DropPath
from mmengine.model import BaseModule

from ...ops import accumulate_dtype, flash_cpu_op, get_attention_settings, scratch
from .focal_attention import exporting
from .focal_block import FocalMlp, build_pool_layers, pool_windows
from .focal_geometry import window_partition, window_reverse

__all__ = ['nearest_keys', 'FocalV2Geometry', 'focal_v2_geometry', 'FocalV2Attention', 'FocalV2Block']

# Elements of one chunk of the (windows, candidates) distance matrix while searching the nearest keys.
_TOPK_CHUNK = 1 << 22


def nearest_keys(grid: Tuple[int, int], keys: Tuple[int, int], factor: int, topk: int) -> torch.Tensor:
    """Indices of the ``topk`` keys nearest to each query point (the official ``get_topk_closest_indice``).

    Args:
        grid: Query grid (rows, cols); query (i, j) sits at ``(i * factor + factor // 2, ...)`` when
            ``factor > 1`` (window centres in token units), at ``(i, j)`` when ``factor == 1``.
        keys: Key grid (rows, cols), keys at integer positions, row-major.
        factor: Window size for window-centre queries, 1 for queries on the key grid.
        topk: Number of keys per query (capped by the number of keys).

    Returns:
        (rows * cols, min(topk, number of keys)) long indices into the row-major key grid, computed on
        CPU with ``torch.topk`` row by row (its ties are the official ones; rows are independent).
    """
    qh, qw = torch.arange(grid[0]), torch.arange(grid[1])
    if factor > 1:
        qh, qw = qh * factor + factor // 2, qw * factor + factor // 2
    q = torch.stack(torch.meshgrid([qh, qw], indexing='ij')).flatten(1)  # (2, Nq)
    k = torch.stack(torch.meshgrid([torch.arange(keys[0]), torch.arange(keys[1])], indexing='ij')).flatten(1)
    n_keys = k.shape[1]
    topk = min(topk, n_keys)
    rows = max(1, _TOPK_CHUNK // n_keys)
    out = []
    for start in range(0, q.shape[1], rows):
        rel = q[:, start:start + rows, None] - k[:, None, :]
        dist = torch.sqrt(rel[0].float() ** 2 + rel[1].float() ** 2)
        out.append(torch.topk(-dist, topk, dim=1)[1])
    return torch.cat(out)


class FocalV2Geometry(NamedTuple):
    """Gather tables of one map size (shared by all blocks of a stage).

    ``index`` addresses the key/value sources ``[h*w real tokens | nWh*nWw pooled tokens]``; positions are
    in token units, so the bias of a pair is ``mlp(query position - key position)``. The fast path looks
    the bias up in one table of all levels' offsets: entry ``query_code[w, q] - key_code[w, k]``.
    """

    grid: Tuple[int, int]  # windows (nWh, nWw) of the padded map
    n_keys: Tuple[int, int]  # keys per window of level 0 and level 1
    index: torch.Tensor  # (nW * (K0 + K1),) long
    key_pos: torch.Tensor  # (nW, K0 + K1, 2) long, key positions
    window_pos: torch.Tensor  # (nW, 1, 1, 2) long, top-left token of each window
    boxes: Tuple[Tuple[int, int, int], ...]  # per level (min dy, min dx, rows) of its table, all `cols` wide
    cols: int  # width of every level's offset table
    query_code: torch.Tensor  # (nW, s*s, 1) int32
    key_code: torch.Tensor  # (nW, 1, K0 + K1) int32


_GEOMETRY_CACHE: 'OrderedDict[tuple, FocalV2Geometry]' = OrderedDict()
_GEOMETRY_CACHE_SIZE = 32


def focal_v2_geometry(hw: Tuple[int, int], window_size: int, topk: int, device: torch.device) -> FocalV2Geometry:
    """The :class:`FocalV2Geometry` of an h×w map, computed on CPU once and cached per size and device.

    Args:
        hw: Real (unpadded) map size.
        window_size: Window side s.
        topk: Keys per level and window.
        device: Where the tables are used.
    """
    key = (tuple(hw), window_size, topk, str(device))
    geo = _GEOMETRY_CACHE.get(key)
    if geo is not None:
        _GEOMETRY_CACHE.move_to_end(key)
        return geo
    h, w = hw
    s = window_size
    nwh, nww = math.ceil(h / s), math.ceil(w / s)
    idx0 = nearest_keys((nwh, nww), (h, w), s, topk)  # into the h*w tokens
    idx1 = nearest_keys((nwh, nww), (nwh, nww), 1, topk)  # into the pooled grid
    pos0 = torch.stack([idx0 // w, idx0 % w], dim=-1)
    pos1 = torch.stack([idx1 // nww, idx1 % nww], dim=-1) * s + s // 2  # a pooled token sits at its window centre
    win = torch.stack(torch.meshgrid([torch.arange(nwh), torch.arange(nww)], indexing='ij'), -1).view(-1, 1, 2) * s
    ranges = []
    for pos in (pos0, pos1):
        rel = win - pos  # query offset (0..s-1) is added on top
        ranges.append((rel.amin(dim=(0, 1)), rel.amax(dim=(0, 1)) + s - 1))
    cols = max(int(hi[1] - lo[1] + 1) for lo, hi in ranges)
    boxes, key_code, offset = [], [], 0
    for (lo, hi), pos in zip(ranges, (pos0, pos1)):
        dy0, dx0, rows = int(lo[0]), int(lo[1]), int(hi[0] - lo[0] + 1)
        boxes.append((dy0, dx0, rows))
        # (qy - ky - dy0) * cols + (qx - kx - dx0) + offset == query_code - key_code
        key_code.append(pos[..., 0] * cols + pos[..., 1] + dy0 * cols + dx0 - offset)
        offset += rows * cols
    offsets = torch.arange(s)
    query = win.view(-1, 1, 2) + torch.stack(torch.meshgrid([offsets, offsets], indexing='ij'), -1).view(1, -1, 2)
    geo = FocalV2Geometry(
        grid=(nwh, nww), n_keys=(idx0.shape[1], idx1.shape[1]),
        index=torch.cat([idx0, idx1 + h * w], dim=1).flatten().to(device),
        key_pos=torch.cat([pos0, pos1], dim=1).to(device), window_pos=win.view(-1, 1, 1, 2).to(device),
        boxes=tuple(boxes), cols=cols,
        query_code=(query[..., 0] * cols + query[..., 1]).int().unsqueeze(-1).to(device),
        key_code=torch.cat(key_code, dim=1).int().unsqueeze(1).to(device))
    _GEOMETRY_CACHE[key] = geo
    if len(_GEOMETRY_CACHE) > _GEOMETRY_CACHE_SIZE:  # multi-scale training and test sizes vary
        _GEOMETRY_CACHE.popitem(last=False)
    return geo


class _BiasLookup(torch.autograd.Function):
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


def _pieces(n_windows: int, n_keys: int, row_bytes: int) -> List[slice]:
    """Equal pieces of windows whose gathered keys and biases fit ``AttentionSettings.piece_bytes``."""
    step = max(1, get_attention_settings().piece_bytes // max(1, n_keys * row_bytes))
    step = math.ceil(n_windows / math.ceil(n_windows / step))
    return [slice(start, min(n_windows, start + step)) for start in range(0, n_windows, step)]


class _FocalV2Core(torch.autograd.Function):
    """Training attention on CPU from queries, key/value sources and the bias table, with its own backward.

    Autograd through the gather, the bias lookup and SDPA's math path keeps the gathered keys, the biases and
    the probabilities of every window until the backward pass, and zero-fills whole-map gradient buffers. Here
    PyTorch's CPU flash kernel runs forward piece by piece and only its log-sum-exp is kept; backward gathers
    the keys and looks the biases up again, recomputes the probabilities per piece, scatters the key/value
    gradients to the source rows (``index_add_``) and the bias gradients to the table (``scatter_add_``).
    """

    @staticmethod
    def forward(ctx, q: torch.Tensor, src: torch.Tensor, table: torch.Tensor, index: torch.Tensor,
                query_code: torch.Tensor, key_code: torch.Tensor, scale: float) -> torch.Tensor:
        b, nw, heads, s2, d = q.shape
        n_keys = key_code.shape[-1]
        out = q.new_empty(b, nw, heads, s2, d)
        lse = q.new_empty(b, nw, heads, s2, dtype=accumulate_dtype(q.dtype))
        pieces = _pieces(nw, n_keys, (src.shape[-1] + heads * s2) * src.element_size())
        for windows in pieces:
            bias = table.index_select(1, (query_code[windows] - key_code[windows]).flatten())
            bias = bias.view(heads, -1, s2, n_keys).transpose(0, 1)
            idx = index.view(nw, n_keys)[windows].flatten()
            for i in range(b):
                kv = torch.index_select(src[i], 0, idx, out=scratch.get('v2_kv', (idx.numel(), src.shape[-1]), src))
                kv = kv.view(-1, n_keys, 2, heads, d)
                o, m = flash_cpu_op()(q[i, windows], kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2), 0.,
                                      False, attn_mask=bias, scale=scale)
                out[i, windows], lse[i, windows] = o, m
        ctx.save_for_backward(q, src, table, index, query_code, key_code, out, lse)
        ctx.scale, ctx.pieces = scale, pieces
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
                kv = torch.index_select(src[i], 0, idx, out=scratch.get('v2_kv', (idx.numel(), src.shape[-1]), src))
                kv = kv.view(-1, n_keys, 2, heads, d)
                k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)  # (nWc, h, N, d)
                q_c, grad_o = q[i, windows], grad_out[i, windows]
                attn = torch.matmul(q_c, k.transpose(-1, -2), out=scratch.get('v2_attn', bias.shape, q))
                attn.mul_(scale).add_(bias).sub_(lse[i, windows].unsqueeze(-1)).exp_()  # probabilities
                grad_kv = scratch.get('v2_grad_kv', (kv.shape[0], n_keys, 2, heads, d), q)
                grad_kv[:, :, 1] = torch.matmul(attn.transpose(-1, -2), grad_o).transpose(1, 2)
                grad_attn = torch.matmul(grad_o, v.transpose(-1, -2))
                grad_attn.sub_(delta[i, windows]).mul_(attn)  # dS, the gradient of the biased logits
                grad_bias = grad_attn if grad_bias is None else grad_bias.add_(grad_attn)
                grad_q[i, windows] = torch.matmul(grad_attn, k).mul_(scale)
                grad_kv[:, :, 0] = torch.matmul(grad_attn.transpose(-1, -2), q_c).mul_(scale).transpose(1, 2)
                grad_src[i].index_add_(0, idx, grad_kv.view(idx.numel(), -1))
            grad_bias = grad_bias.transpose(0, 1).reshape(heads, -1)
            grad_table.scatter_add_(1, code.long().expand_as(grad_bias), grad_bias)
        return grad_q, grad_src, grad_table, None, None, None, None


class FocalV2Attention(BaseModule):
    """Focal-fast attention of one block (official v2 ``WindowAttention``), any input size.

    Args:
        embed_dims: Channels C.
        num_heads: Attention heads.
        window_size: Window side s.
        focal_level: 1 (nearest tokens only) or 2 (plus nearest pooled windows, every official model).
        topk: Keys per level and window (``FOCAL_TOPK``, 128 in the official configs).
        qkv_bias: Bias in the qkv projection.
        qk_scale: Override of head_dim ** -0.5.
        attn_drop: Dropout on attention weights.
        proj_drop: Dropout after the output projection.
        attn_impl: ``'fast'`` (bias table per distinct offset, fused attention) or ``'reference'`` (the
            official formulation: the MLP on every (query, key) coordinate, explicit logits and softmax;
            also used for attention dropout > 0 and while exporting).
        init_cfg: mmengine init config.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7, focal_level: int = 2, topk: int = 128,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None, attn_drop: float = 0.,
                 proj_drop: float = 0., attn_impl: str = 'fast', init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.attn_impl = attn_impl
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.window_size = window_size
        self.focal_level = focal_level
        self.topk = topk
        self.scale = qk_scale or self.head_dims ** -0.5
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.coord2rpb_all = nn.ModuleList([
            nn.Sequential(nn.Linear(2, self.head_dims), nn.ReLU(inplace=True), nn.Linear(self.head_dims, num_heads))
            for _ in range(focal_level)
        ])

    def bias_table(self, geo: FocalV2Geometry) -> torch.Tensor:
        """The MLPs of all levels on every offset of their boxes: (heads, all offsets), see :class:`FocalV2Geometry`."""
        tables = []
        for level in range(self.focal_level):
            dy0, dx0, rows = geo.boxes[level]
            mlp = self.coord2rpb_all[level]
            ys = torch.arange(dy0, dy0 + rows, device=geo.key_code.device, dtype=mlp[0].weight.dtype)
            xs = torch.arange(dx0, dx0 + geo.cols, device=geo.key_code.device, dtype=mlp[0].weight.dtype)
            tables.append(mlp(torch.stack(torch.meshgrid([ys, xs], indexing='ij'), -1).view(-1, 2)))
        return torch.cat(tables).t()

    def position_bias(self, geo: FocalV2Geometry, per_pair: bool = False, table: Optional[torch.Tensor] = None,
                      windows: slice = slice(None)) -> torch.Tensor:
        """Bias of every (window, query, key) pair, (nW, heads, s*s, K0 [+ K1]).

        Args:
            geo: The map's geometry.
            per_pair: Run the MLP on every pair's coordinate, as the official code does. Otherwise it runs
                once per distinct offset (:meth:`bias_table`) and each pair looks its value up: the same
                values, computed once (the result is a strided view).
            table: :meth:`bias_table`, if already computed.
            windows: Only these windows.
        """
        if per_pair:
            s = self.window_size
            offsets = torch.arange(s, device=geo.key_pos.device)
            query = geo.window_pos + torch.stack(torch.meshgrid([offsets, offsets], indexing='ij'),
                                                 -1).view(1, -1, 1, 2)
            parts, start = [], 0
            for level in range(self.focal_level):
                mlp = self.coord2rpb_all[level]
                rel = query - geo.key_pos[:, None, start:start + geo.n_keys[level]]  # (nW, s2, n, 2) query - key
                parts.append(mlp(rel.to(mlp[0].weight.dtype)))
                start += geo.n_keys[level]
            return torch.cat(parts, dim=2).permute(0, 3, 1, 2)
        table = self.bias_table(geo) if table is None else table
        n_keys = sum(geo.n_keys[:self.focal_level])
        return _BiasLookup.apply(table, geo.query_code[windows], geo.key_code[windows, :, :n_keys]).transpose(0, 1)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], pooled: Optional[torch.Tensor]) -> torch.Tensor:
        """Attend on a padded map.

        Args:
            x: (B, Hp, Wp, C), Hp and Wp multiples of s, the real map in its top-left (h, w).
            hw: Real map size (h, w).
            pooled: (B, Hp/s, Wp/s, C) pooled window tokens (level 2), or None.

        Returns:
            (B, Hp, Wp, C).
        """
        b, hp, wp, c = x.shape
        h, w = hw
        s, heads, d = self.window_size, self.num_heads, self.head_dims
        geo = focal_v2_geometry(hw, s, self.topk, x.device)
        n0, n1 = geo.n_keys
        n_keys = n0 + (n1 if self.focal_level > 1 else 0)
        index = geo.index if self.focal_level > 1 else geo.index.view(-1, n0 + n1)[:, :n0].flatten()
        qkv = self.qkv(x)
        q = window_partition(qkv[..., :c], s).view(b, -1, s * s, heads, d).transpose(2, 3)  # (B, nW, h, s2, d)
        nw = q.shape[1]
        # key/value sources: the real tokens' rows, then the pooled tokens' (one row of 2C per token)
        sources = [qkv[:, :h, :w, c:].reshape(b, h * w, 2 * c)]
        if pooled is not None and self.focal_level > 1:
            kv_pooled = F.linear(pooled, self.qkv.weight[c:], None if self.qkv.bias is None else self.qkv.bias[c:])
            sources.append(kv_pooled.reshape(b, -1, 2 * c))
        src = torch.cat(sources, dim=1)
        # exporters (ONNX, tracing) cannot follow the reused buffers of the CPU pieces: standard operators instead
        reference = self.attn_impl == 'reference' or (self.training and self.attn_drop.p > 0) or exporting()
        if not reference and x.device.type == 'cpu' and not torch.is_grad_enabled():
            return window_reverse(self.proj_drop(self.proj(self._attend_in_pieces(q, src, index, geo, n_keys))),
                                  s, hp, wp)
        if not reference and x.device.type == 'cpu' and flash_cpu_op() is not None:
            table = self.bias_table(geo).to(q.dtype)
            if table.requires_grad:
                scratch.keep_until_backward(table)
            out = _FocalV2Core.apply(q.contiguous(), src, table, index, geo.query_code, geo.key_code[..., :n_keys],
                                     self.scale)
            out = out.transpose(2, 3).reshape(b, nw, s * s, c)
            return window_reverse(self.proj_drop(self.proj(out)), s, hp, wp)
        bias = self.position_bias(geo, per_pair=reference).to(q.dtype)  # (nW, h, s2, N)
        outs = []
        for i in range(b):  # a window batch per image: the bias is per window, shared by the images
            kv = src[i].index_select(0, index).view(nw, n_keys, 2, heads, d)
            k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)  # (nW, h, N, d) strided views
            if reference:
                attn = (q[i] * self.scale) @ k.transpose(-2, -1) + bias
                outs.append(self.attn_drop(attn.softmax(dim=-1)) @ v)
            else:
                outs.append(F.scaled_dot_product_attention(q[i], k, v, attn_mask=bias, scale=self.scale))
        out = torch.stack(outs).transpose(2, 3).reshape(b, nw, s * s, c)
        return window_reverse(self.proj_drop(self.proj(out)), s, hp, wp)

    def _attend_in_pieces(self, q: torch.Tensor, src: torch.Tensor, index: torch.Tensor, geo: FocalV2Geometry,
                          n_keys: int) -> torch.Tensor:
        """CPU inference: gather keys and biases a few windows at a time into reused buffers.

        Whole-map key and bias tensors are hundreds of MiB at detection sizes, and fresh pages cost as
        much as the copies (see :class:`~mmfocal.ops.ScratchBuffers`); pieces of
        ``AttentionSettings.piece_bytes`` stay in cache and reuse one buffer.

        Returns:
            (B, nW, s*s, C) attention output before the projection.
        """
        b, nw, heads, s2, d = q.shape
        table = self.bias_table(geo).to(q.dtype)
        out = q.new_empty(b, nw, s2, heads, d)
        for windows in _pieces(nw, n_keys, (src.shape[-1] + heads * s2) * src.element_size()):
            n = windows.stop - windows.start
            bias = self.position_bias(geo, table=table, windows=windows)
            idx = index.view(nw, n_keys)[windows].flatten()
            for i in range(b):
                kv = torch.index_select(src[i], 0, idx, out=scratch.get('v2_kv', (idx.numel(), src.shape[-1]), src))
                kv = kv.view(n, n_keys, 2, heads, d)
                o = F.scaled_dot_product_attention(q[i, windows], kv[:, :, 0].transpose(1, 2),
                                                   kv[:, :, 1].transpose(1, 2), attn_mask=bias, scale=self.scale)
                out[i, windows] = o.transpose(1, 2)
        return out.view(b, nw, s2, heads * d)


class FocalV2Block(BaseModule):
    """Pre-norm Focal-fast block: ``x + attn(LN(x))``, then ``x + mlp(LN(x))`` (official v2 block names).

    The map is padded bottom/right to a multiple of s after LN1 (zeros); the official block never pads
    (it runs only at multiples of s).

    Args:
        embed_dims: Channels C.
        num_heads: Attention heads.
        window_size: Window side s.
        focal_level: 1 or 2.
        topk: Keys per level and window.
        pool_method: Window pooling for level 2: ``'fc'`` (official), ``'mean'``, ``'max'``, ``'conv'``.
        mlp_ratio: MLP hidden width / C.
        qkv_bias: Bias in the qkv projection.
        qk_scale: Override of the attention scale.
        drop_rate: Dropout after projections.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth of this block.
        norm_cfg: Norm config for the token norms.
        attn_impl: ``'fast'`` or ``'reference'`` (see :class:`FocalV2Attention`).
        init_cfg: mmengine init config.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7, focal_level: int = 2, topk: int = 128,
                 pool_method: str = 'fc', mlp_ratio: float = 4., qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop_rate: float = 0., attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0., norm_cfg: dict = dict(type='LN'), attn_impl: str = 'fast',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.window_size = window_size
        self.focal_level = focal_level
        self.pool_method = pool_method
        self.pool_layers = build_pool_layers(embed_dims, window_size, focal_level, pool_method)
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = FocalV2Attention(embed_dims, num_heads, window_size=window_size, focal_level=focal_level,
                                     topk=topk, qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop_rate,
                                     proj_drop=drop_rate, attn_impl=attn_impl)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity()
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = FocalMlp(embed_dims=embed_dims, hidden_dims=int(embed_dims * mlp_ratio), drop=drop_rate)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        """Apply the block to (B, H*W, C) tokens of an H×W map."""
        h, w = hw_shape
        b, n, c = x.shape
        s = self.window_size
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        pad_b, pad_r = (s - h % s) % s, (s - w % s) % s
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        pooled = pool_windows(x, s, self.pool_method, self.pool_layers) if self.focal_level > 1 else None
        x = self.attn(x, (h, w), pooled)
        if pad_b or pad_r:
            x = x[:, :h, :w, :]
        x = shortcut + self.drop_path(x.reshape(b, n, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))
