"""The focal self-attention layer: parameters, bias tables, and its fast and reference forward paths."""

from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from ...ops import AttentionGeometry, FocalAttentionCore, flash_cpu_op, fused_attention, pack_qkv, scratch
from .focal_geometry import (MASK_VALUE, expand_ring_offsets, expand_ring_valid_index, relative_position_index,
                             ring_duplicates, window_key_index, window_partition, window_reverse)

__all__ = ['FocalAttention', 'exporting']


def exporting() -> bool:
    """Whether the model is being exported or traced (ONNX, TorchScript tracing, ``torch.export``)."""
    is_exporting = getattr(getattr(torch, 'compiler', None), 'is_exporting', None)  # newer torch only
    return bool(torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or (is_exporting and is_exporting()))


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
        """:func:`window_key_index` of this layer for a padded map, cached per map size and device."""
        key = (hp, wp, device)
        if key in self._index_cache:
            return self._index_cache[key]
        index, mask = window_key_index(hp, wp, self.window_size, self.ring_offsets if self.expand_size > 0 else None,
                                       self.focal_window if self.focal_level > 1 else None)
        out = (index.to(device), None if mask is None else mask.to(device))
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
        if self.attn_impl == 'reference' or (self.training and self.attn_drop.p > 0) or exporting():
            # Attention dropout (no released model uses it) drops every key's probability on its own,
            # repeated ring keys included: the official formulation, which keeps them apart. Exporters
            # (ONNX, tracing) cannot follow the fast path's custom autograd function and reused buffers;
            # the reference formulation computes the same with standard operators.
            return self._forward_reference(x, pooled)
        return self._forward_fast(x, pooled)

    def _forward_fast(self, x: torch.Tensor, pooled: Optional[torch.Tensor]) -> torch.Tensor:
        b, hp, wp, c = x.shape
        s, h, d = self.window_size, self.num_heads, self.head_dims
        index, mask = self._gather_index(hp, wp, x.device)
        g = AttentionGeometry(grid=(hp // s, wp // s), window=s, heads=h, head_dims=d,
                              channels=d + (mask is not None), pad=self.focal_window // 2, n_keys=index.shape[1],
                              index=index.flatten(), mask=mask, scale=self.scale)
        qkv = self.qkv(x)
        kv_pooled = None
        if self.focal_level > 1:
            kv_pooled = F.linear(pooled, self.qkv.weight[c:], None if self.qkv.bias is None else self.qkv.bias[c:])
        bias = self.position_bias(merge_ring=True).to(qkv.dtype)[None, :, None]  # (1, h, 1, s2, N)
        inputs = [t for t in (qkv, kv_pooled, bias) if t is not None and t.requires_grad]
        if not torch.is_grad_enabled() or not inputs:
            q, src = pack_qkv(qkv, kv_pooled, g)
            return self.proj_drop(self.proj(fused_attention(q, src, bias[:, :, 0], g)))
        scratch.keep_until_backward(inputs[0])
        flash = x.device.type == 'cpu' and flash_cpu_op() is not None
        out = FocalAttentionCore.apply(qkv, kv_pooled, bias, g, flash)
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
