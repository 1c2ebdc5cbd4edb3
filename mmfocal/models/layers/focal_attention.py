"""The attention layers of both families: parameters, position bias, and the official reference formulation.

Each layer says *what* it attends to (its keys through :mod:`.focal_geometry`, its position bias) and hands the
projections to :mod:`mmfocal.ops`, which picks the implementation (:func:`mmfocal.ops.choose_path`). The
reference formulation of each family (the official code's operators) lives here, beside its parameters.
"""

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops import (AttentionGeometry, AttentionPath, bias_rows, choose_path, focal_v1_attention, focal_v2_attention,
                    focal_v2_inference, focal_v2_training, lookup_bias, mask_channel, scratch)
from .focal_geometry import (MASK_VALUE, FocalV2Geometry, expand_ring_offsets, expand_ring_valid_index,
                             focal_v1_key_index, focal_v2_bias_rows, focal_v2_geometry, focal_v2_token_rows,
                             relative_position_index, ring_duplicates, window_partition, window_reverse)
from .primitives import trunc_normal_

__all__ = ['FocalAttention', 'FocalV2Attention']


class _WindowAttention(nn.Module):
    """What both families share: the qkv / output projections (official names), dropouts and the scale."""

    family = ''

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, focal_level: int, qkv_bias: bool,
                 qk_scale: Optional[float], attn_drop: float, proj_drop: float, attn_impl: str) -> None:
        super().__init__()
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.window_size = window_size
        self.focal_level = focal_level
        self.scale = qk_scale or self.head_dims ** -0.5
        self.attn_impl = attn_impl
        self._projection_cfg = (qkv_bias, attn_drop, proj_drop)

    def _add_projections(self) -> None:
        """Register qkv, attn_drop, proj and proj_drop where the family's official module does (key order)."""
        qkv_bias, attn_drop, proj_drop = self._projection_cfg
        self.qkv = nn.Linear(self.embed_dims, self.embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(self.embed_dims, self.embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def _path(self, x: torch.Tensor, pooled: Optional[torch.Tensor]) -> AttentionPath:
        """The implementation of this call (:func:`mmfocal.ops.choose_path`)."""
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or (pooled is not None and pooled.requires_grad)
            or any(p.requires_grad for p in self.parameters()))
        return choose_path(self.family, self.attn_impl, x.device, needs_grad,
                           dropout=self.training and self.attn_drop.p > 0)

    def prepare(self, hw: Tuple[int, int], device: torch.device) -> None:
        """Build (and cache) the gather tables of an h×w map on ``device`` (outside a ``torch.compile`` trace)."""
        raise NotImplementedError

    def _pooled_kv(self, pooled: torch.Tensor) -> torch.Tensor:
        """Key/value projections of the pooled tokens (the qkv layer without its query part)."""
        c = self.embed_dims
        return F.linear(pooled, self.qkv.weight[c:], None if self.qkv.bias is None else self.qkv.bias[c:])

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        return self.proj_drop(self.proj(out))


class FocalAttention(_WindowAttention):
    """Focal self-attention of one block (official v1 ``WindowAttention``), any input size.

    Each query window attends to (a) its own s×s tokens, (b) the tokens of an ``expand_size``-wide
    ring around it, read cyclically over the padded map as the official rolls do, and (c) with
    ``focal_level == 2`` the fw×fw neighbourhood of pooled sub-window tokens, zero outside the grid
    and masked there with -100 (the fast paths mask with ``FAST_MASK_VALUE``, -50: the same outputs, faster).

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
        attn_impl: ``'fast'`` (one gather + fused attention, :mod:`mmfocal.ops`) or ``'reference'`` (official
            roll/unfold; also taken for attention dropout and while exporting).
    """

    family = 'v1'

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
                 attn_impl: str = 'fast') -> None:
        super().__init__(embed_dims, num_heads, window_size, focal_level, qkv_bias, qk_scale, attn_drop, proj_drop,
                         attn_impl)
        self.expand_size = expand_size
        self.focal_window = focal_window
        s = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * s - 1) ** 2, num_heads))
        if expand_size > 0:
            n_ring = 4 * (s * s - (s - expand_size) ** 2)
            self.relative_position_bias_table_to_neighbors = nn.Parameter(torch.zeros(1, num_heads, s * s, n_ring))
        if focal_level > 1:
            self.relative_position_bias_table_to_windows = nn.ParameterList(
                [nn.Parameter(torch.zeros(num_heads, (s + focal_window - 1) ** 2))])
        self.init_non_persistent_buffers()
        self._add_projections()  # after the tables, as in the official v1 WindowAttention

    def init_non_persistent_buffers(self) -> None:
        """(Re)build the never-saved index buffers of the window geometry where the parameters are (timm's
        ``reinit_non_persistent_buffers`` calls it after ``to_empty``); the index maths runs on the CPU."""
        s, e = self.window_size, self.expand_size
        with torch.device('cpu'):
            buffers = {'relative_position_index': relative_position_index(s, s)}
            if e > 0:
                offsets = expand_ring_offsets(s, e)
                first, slots, repeats = ring_duplicates(offsets)
                buffers.update(valid_ind_rolled=expand_ring_valid_index(s, e), ring_first=first, ring_slots=slots,
                               ring_repeats=repeats)
                self.ring_offsets = offsets[first]  # distinct ones, for the gather tables: on the CPU, always
            if self.focal_level > 1:
                buffers['relative_position_index_0'] = relative_position_index(s, self.focal_window)
        device = self.relative_position_bias_table.device
        for name, value in buffers.items():
            self.register_buffer(name, value.to(device), persistent=False)

    def init_bias_tables(self) -> None:
        """The official initialisation of the ring and pooled-level tables (trunc-normal, std 0.02).

        The window table stays as constructed (zeros), as in the official model.
        """
        if self.expand_size > 0:
            trunc_normal_(self.relative_position_bias_table_to_neighbors, std=.02)
        if self.focal_level > 1:
            trunc_normal_(self.relative_position_bias_table_to_windows[0], std=.02)

    def position_bias(self, merge_ring: bool = False) -> torch.Tensor:
        """Additive bias for all keys of a window, (heads, s*s, N), in key order window|ring|pooled.

        Args:
            merge_ring: One key per distinct ring offset (the fast path's keys), repeated keys
                merged with ``logaddexp`` of their biases (:func:`ring_duplicates`).
        """
        s2 = self.window_size ** 2
        # index_select, not advanced indexing: the backward of table[index] is an index_put_ that PyTorch runs
        # with parallel atomic adds on CPU, so repeated indices summed in a varying order made two seeded runs
        # differ (1e-9, then whole detections after training); index_select's backward (index_add_) is ordered
        parts = [self.relative_position_bias_table.index_select(0, self.relative_position_index.flatten())
                 .view(s2, s2, -1).permute(2, 0, 1)]
        if self.expand_size > 0:
            ring = self.relative_position_bias_table_to_neighbors[0]
            if merge_ring:
                first = ring.index_select(-1, self.ring_first)
                # -inf where nothing merges: logaddexp(b, -inf) == b exactly, with gradient 1 and 0
                repeats = torch.full_like(first, float('-inf')).index_copy(-1, self.ring_slots,
                                                                          ring.index_select(-1, self.ring_repeats))
                ring = torch.logaddexp(first, repeats)
            parts.append(ring)
        if self.focal_level > 1:
            table = self.relative_position_bias_table_to_windows[0]
            parts.append(table.index_select(1, self.relative_position_index_0.flatten()).view(self.num_heads, s2, -1))
        return torch.cat(parts, dim=-1)

    def forward(self, x: torch.Tensor, pooled: Optional[torch.Tensor] = None,
                hw: Optional[Tuple[int, int]] = None, real: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend on a padded map.

        Args:
            x: (B, Hp, Wp, C) with Hp, Wp multiples of the window size.
            pooled: (B, Hp/s, Wp/s, C) pooled sub-window tokens when ``focal_level == 2``.
            hw: Unused (v1 keys do not depend on the real map size; the argument keeps one block interface).
            real: Unused (v1 reads the pad tokens as keys, as the official code does).

        Returns:
            (B, Hp, Wp, C).
        """
        path = self._path(x, pooled)
        if path is AttentionPath.REFERENCE:
            return self._forward_reference(x, pooled)
        b, hp, wp, c = x.shape
        s, h, d = self.window_size, self.num_heads, self.head_dims
        index, mask, key_mask, first = self._key_index(hp, wp, x.device)
        g = AttentionGeometry(grid=(hp // s, wp // s), window=s, heads=h, head_dims=d,
                              channels=d + (mask is not None and mask_channel(path, x.device)),
                              pad=self.focal_window // 2, n_keys=index.shape[1], index=index.flatten(), mask=mask,
                              key_mask=key_mask, first_masked=first, scale=self.scale)
        # at inference the qkv bias is added where the projections are laid out (no GEMM pass copying it first)
        fold_bias = path is AttentionPath.FUSED and type(self.qkv) is nn.Linear and self.qkv.bias is not None
        qkv = F.linear(x, self.qkv.weight) if fold_bias else self.qkv(x)
        kv_pooled = self._pooled_kv(pooled) if self.focal_level > 1 else None
        bias = self.position_bias(merge_ring=True).to(qkv.dtype)[None, :, None]  # (1, h, 1, s2, N)
        return self._output(focal_v1_attention(qkv, kv_pooled, bias, g, path, self.qkv.bias if fold_bias else None))

    def _key_index(self, hp: int, wp: int, device: torch.device
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], int]:
        return focal_v1_key_index(hp, wp, self.window_size, self.expand_size,
                                  self.ring_offsets if self.expand_size > 0 else None,
                                  self.focal_window if self.focal_level > 1 else None, device)

    def prepare(self, hw: Tuple[int, int], device: torch.device) -> None:
        """Build (and cache) the gather tables of an h×w map on ``device`` (outside a ``torch.compile`` trace)."""
        s = self.window_size
        if self.attn_impl == 'fast':
            self._key_index(-(-hw[0] // s) * s, -(-hw[1] // s) * s, device)

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
        out = self._output(out)
        return window_reverse(out, s, hp, wp)


class FocalV2Attention(_WindowAttention):
    """Focal-fast attention of one block (official v2 ``WindowAttention``), any input size.

    Each window attends its ``topk`` nearest tokens and (level 2) its ``topk`` nearest pooled windows
    (:func:`~.focal_geometry.focal_v2_geometry`); the position bias of a (query, key) pair is a small MLP
    (``coord2rpb_all.{level}``) of their relative coordinate in token units.

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
    """

    family = 'v2'

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7, focal_level: int = 2, topk: int = 128,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None, attn_drop: float = 0.,
                 proj_drop: float = 0., attn_impl: str = 'fast') -> None:
        super().__init__(embed_dims, num_heads, window_size, focal_level, qkv_bias, qk_scale, attn_drop, proj_drop,
                         attn_impl)
        self.topk = topk
        self._add_projections()  # before the position-bias MLPs, as in the official v2 WindowAttention
        self.coord2rpb_all = nn.ModuleList([
            nn.Sequential(nn.Linear(2, self.head_dims), nn.ReLU(inplace=True), nn.Linear(self.head_dims, num_heads))
            for _ in range(focal_level)
        ])

    def init_bias_tables(self) -> None:
        """Nothing beyond the Linear initialisation: the position bias is an MLP."""

    def prepare(self, hw: Tuple[int, int], device: torch.device) -> None:
        """Build (and cache) the gather tables of an h×w map on ``device`` (outside a ``torch.compile`` trace)."""
        focal_v2_geometry(hw, self.window_size, self.topk, device)

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
        return lookup_bias(table, geo.query_code[windows], geo.key_code[windows, :, :n_keys])

    def forward(self, x: torch.Tensor, pooled: Optional[torch.Tensor] = None,
                hw: Optional[Tuple[int, int]] = None, real: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend on a padded map.

        Args:
            x: (B, Hp, Wp, C), Hp and Wp multiples of s, the real map in its top-left (h, w).
            pooled: (B, Hp/s, Wp/s, C) pooled window tokens (level 2), or None.
            hw: Real map size (h, w); the whole of x when None.
            real: The real map (B, h, w, C) contiguous, if the caller has it: the fused paths project only
                its tokens (no key is a pad token), else they copy it out of x.

        Returns:
            (B, h, w, C) from the fused paths (FUSED, CORE), which compute no pad token's output;
            (B, Hp, Wp, C) from the others.
        """
        b, hp, wp, c = x.shape
        h, w = (hp, wp) if hw is None else hw
        s, heads, d = self.window_size, self.num_heads, self.head_dims
        geo = focal_v2_geometry((h, w), s, self.topk, x.device)
        n0, n1 = geo.n_keys
        n_keys = n0 + (n1 if self.focal_level > 1 else 0)
        path = self._path(x, pooled)
        if path in (AttentionPath.FUSED, AttentionPath.CORE):
            tokens = (x[:, :h, :w] if real is None else real).reshape(b, h * w, c)
            forward = self._forward_inference if path is AttentionPath.FUSED else self._forward_core
            return forward(tokens, pooled if self.focal_level > 1 else None, (h, w), geo).view(b, h, w, c)
        index = geo.index if self.focal_level > 1 else geo.index.view(-1, n0 + n1)[:, :n0].flatten()
        qkv = self.qkv(x)
        q = window_partition(qkv[..., :c], s).view(b, -1, s * s, heads, d).transpose(2, 3)  # (B, nW, h, s2, d)
        # key/value sources: the real tokens' rows, then the pooled tokens' (one row of 2C per token)
        sources = [qkv[:, :h, :w, c:].reshape(b, h * w, 2 * c)]
        if pooled is not None and self.focal_level > 1:
            sources.append(self._pooled_kv(pooled).reshape(b, -1, 2 * c))
        src = torch.cat(sources, dim=1)
        if path is AttentionPath.REFERENCE:
            out = self._attend_reference(q, src, index, geo, n_keys)
        else:
            out = focal_v2_attention(q, src, self.bias_table(geo).to(q.dtype), index, geo.query_code,
                                     geo.key_code[..., :n_keys], self.scale)
        return window_reverse(self._output(out), s, hp, wp)

    def _forward_core(self, tokens: torch.Tensor, pooled: Optional[torch.Tensor], hw: Tuple[int, int],
                      geo: FocalV2Geometry) -> torch.Tensor:
        """The CORE path (:func:`~mmfocal.ops.focal_v2_training`) on (B, h*w, C) real tokens: (B, h*w, C).

        The qkv layer's query rows and key/value rows of the real tokens, the pooled tokens' key/value rows
        after the latter: the row layout of the inference path. (Projecting the concatenated tokens instead
        saves that concatenation for the backward pass: a training step's peak memory at 512² ×2 was 1294
        against 1227 MiB.)
        """
        b, _, c = tokens.shape
        weight, bias = self.qkv.weight, self.qkv.bias
        q_rows = F.linear(tokens, weight[:c], None if bias is None else bias[:c])
        kv_rows = F.linear(tokens, weight[c:], None if bias is None else bias[c:])
        if pooled is not None:
            kv_rows = torch.cat([kv_rows, self._pooled_kv(pooled).reshape(b, -1, 2 * c)], dim=1)
        slots, index = focal_v2_token_rows(hw, self.window_size, self.topk, self.focal_level, tokens.device)
        codes, bias_index = focal_v2_bias_rows(hw, self.window_size, self.topk, self.focal_level, tokens.device)
        rows = bias_rows(self.bias_table(geo).to(q_rows.dtype), codes)
        out = focal_v2_training(q_rows, kv_rows, slots, index, rows, bias_index, self.num_heads, self.scale)
        return self.proj_drop(self.proj(out))

    def _forward_inference(self, tokens: torch.Tensor, pooled: Optional[torch.Tensor], hw: Tuple[int, int],
                           geo: FocalV2Geometry) -> torch.Tensor:
        """The FUSED path (:func:`~mmfocal.ops.focal_v2_inference`) on (B, h*w, C) real tokens: (B, h*w, C).

        The qkv layer writes every real token's row and the pooled windows' key/value rows into one reused
        buffer, so no projection of the whole map is cropped, concatenated or copied to windows.
        """
        b, t, c = tokens.shape
        n_pooled = 0 if pooled is None else pooled.shape[1] * pooled.shape[2]
        rows = scratch.get('v2_rows', (b, t + n_pooled, 3 * c), tokens)
        # in the activations' dtype, as autocast runs the module (the out= calls take no autocast)
        weight, bias = self.qkv.weight.to(tokens.dtype), self.qkv.bias
        bias = None if bias is None else bias.to(tokens.dtype)
        for i in range(b):
            if bias is None:
                torch.mm(tokens[i], weight.t(), out=rows[i, :t])
            else:
                torch.addmm(bias, tokens[i], weight.t(), out=rows[i, :t])
        if n_pooled:
            rows[:, t:, c:] = self._pooled_kv(pooled).view(b, n_pooled, 2 * c)
        slots, index = focal_v2_token_rows(hw, self.window_size, self.topk, self.focal_level, tokens.device)
        codes, bias_index = focal_v2_bias_rows(hw, self.window_size, self.topk, self.focal_level, tokens.device)
        out = focal_v2_inference(rows, t, slots, index, bias_rows(self.bias_table(geo).to(tokens.dtype), codes),
                                 bias_index, self.num_heads, self.scale, self.proj.weight, self.proj.bias)
        return self.proj_drop(out)

    def _attend_reference(self, q: torch.Tensor, src: torch.Tensor, index: torch.Tensor, geo: FocalV2Geometry,
                          n_keys: int) -> torch.Tensor:
        """The official formulation: the MLP on every pair, explicit logits, softmax, dropout; (B, nW, s2, C)."""
        b, nw, heads, s2, d = q.shape
        bias = self.position_bias(geo, per_pair=True).to(q.dtype)  # (nW, h, s2, N)
        outs = []
        for i in range(b):
            kv = src[i].index_select(0, index).view(nw, n_keys, 2, heads, d)
            k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
            attn = (q[i] * self.scale) @ k.transpose(-2, -1) + bias
            outs.append(self.attn_drop(attn.softmax(dim=-1)) @ v)
        return torch.stack(outs).transpose(2, 3).reshape(b, nw, s2, heads * d)
