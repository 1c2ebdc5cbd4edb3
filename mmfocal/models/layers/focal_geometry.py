"""Which keys each window attends to, for both families: index maths only, never weights.

v1 (focal attention): expand-ring offsets, relative-position indices, windows, and the key gather index of a
padded map (:func:`window_key_index`). Focal-fast (v2): the nearest-key search and the gather and bias-lookup
tables of a map size (:func:`focal_v2_geometry`). Tables of a map size are cached by
:func:`mmfocal.ops.cached_geometry` (one policy for both).

Focal-fast's official code (``classification/focal_transformer_v2.py`` of microsoft/Focal-Transformer) gives a
window these keys: level 0, the ``topk`` tokens of the whole map nearest (Euclidean) to the window's centre;
level 1, the ``topk`` fc-pooled window tokens nearest to the window (in window-grid units). It computes them
once, for the size it is built for. Here they are computed per map size with exactly the official procedure:

* Windows tile the map from the top-left corner; the last row/column of windows may reach past the map
  (their pad queries are computed and dropped). A window's centre is ``s * index + s // 2``.
* Level-0 candidates are the real tokens of the map only (never padding); level-1 candidates are all
  windows (a border window's pooled token is the fc-pooling of its real tokens and zeros).
* With fewer candidates than ``topk`` (small maps), every candidate is a key.
* Ties at the K-th distance are broken by ``torch.topk`` on CPU over the whole row of candidates, the
  official call, so where the official code runs (a multiple-of-s map) the keys are the official ones.
"""

import math
from typing import List, NamedTuple, Optional, Tuple

import torch

from ...ops import cached_geometry, get_attention_settings

__all__ = ['MASK_VALUE', 'FAST_MASK_VALUE', 'expand_ring_offsets', 'expand_ring_valid_index', 'ring_duplicates',
           'relative_position_index', 'window_partition', 'window_reverse', 'window_key_index',
           'focal_v1_key_index', 'nearest_keys', 'FocalV2Geometry', 'focal_v2_geometry', 'focal_v2_token_rows',
           'focal_v2_bias_rows']

# Additive mask value of the official code (Swin convention); finite, so fp16/bf16 stay finite.
MASK_VALUE = -100.0
# The fast paths' border mask. PyTorch's CPU exp (in its flash and softmax kernels too) leaves its vector code
# for inputs below -87.3, where float32 exp underflows: at -100 a masked logit cost 50-150x an ordinary one
# (2026-12-06, both stacks). A masked key is zero, so its logit is its position bias b + mask; at -50 its weight
# against the largest logit m, e^(b - 50 - m), still vanishes in float32 sums unless b exceeds every real
# logit by ~30 (at -100, by ~80): the same outputs (bit-identical on the benchmark's models, 2026-12-06).
FAST_MASK_VALUE = -50.0


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


def window_key_index(hp: int, wp: int, window_size: int, ring_offsets: Optional[torch.Tensor],
                     focal_window: Optional[int]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Flat source index of every key of every window, and the per-source border mask.

    Sources are the hp*wp fine tokens followed by the (nWh+2p)*(nWw+2p) zero-padded pooled grid.
    The official -100 mask hits exactly the keys read from that zero padding, so it is a property of
    the source token and can travel with it through the gather (as :data:`FAST_MASK_VALUE`).

    Args:
        hp: Padded map height (a multiple of ``window_size``).
        wp: Padded map width.
        window_size: Window side s.
        ring_offsets: (R, 2) window-local offsets of the ring keys (distinct ones), or None without a ring.
        focal_window: Pooled neighbourhood side fw, or None without a pooled level.

    Returns:
        index (nW, N) long; mask (T,) with 0 / ``FAST_MASK_VALUE`` per source token, or None when nothing
        is masked. Both on the CPU.
    """
    s = window_size
    nwh, nww = hp // s, wp // s
    wi, wj = torch.meshgrid(torch.arange(nwh), torch.arange(nww), indexing='ij')
    top, left = (wi.flatten() * s)[:, None], (wj.flatten() * s)[:, None]  # (nW, 1)
    r, c = torch.meshgrid(torch.arange(s), torch.arange(s), indexing='ij')
    index = [(top + r.flatten()) * wp + left + c.flatten()]
    if ring_offsets is not None:
        off = ring_offsets.cpu()
        rows = (top + off[:, 0]) % hp  # cyclic, as the official torch.roll
        cols = (left + off[:, 1]) % wp
        index.append(rows * wp + cols)
    mask = None
    if focal_window is not None:
        fw, p = focal_window, focal_window // 2
        a, b = torch.meshgrid(torch.arange(fw), torch.arange(fw), indexing='ij')
        prow = wi.flatten()[:, None] + a.flatten()  # row in the padded pooled grid
        pcol = wj.flatten()[:, None] + b.flatten()
        index.append(hp * wp + prow * (nww + 2 * p) + pcol)
        if p > 0:
            grid = torch.full((nwh + 2 * p, nww + 2 * p), FAST_MASK_VALUE)
            grid[p:p + nwh, p:p + nww] = 0
            mask = torch.cat([torch.zeros(hp * wp), grid.flatten()])
    return torch.cat(index, dim=1), mask


def focal_v1_key_index(hp: int, wp: int, window_size: int, expand_size: int, ring_offsets: Optional[torch.Tensor],
                       focal_window: Optional[int], device: torch.device
                       ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], int]:
    """:func:`window_key_index` of a padded map on ``device`` with its per-window form, cached per map size and
    layer settings.

    Returns:
        index (nW, N) and mask (T,) as :func:`window_key_index`; ``key_mask`` (nW, 1, N), the mask of every key of
        every window (``mask[index]``), and ``first``, the first key slot masked in any window (only pooled keys
        can be), or ``(None, N)`` when nothing is masked.
    """

    def build() -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], int]:
        index, mask = window_key_index(hp, wp, window_size, ring_offsets, focal_window)
        if mask is not None:
            key_mask = mask[index]
            slots = (key_mask != 0).any(dim=0).nonzero()
            if slots.numel():
                return index.to(device), mask.to(device), key_mask[:, None].to(device), int(slots[0])
        return index.to(device), None, None, index.shape[1]

    return cached_geometry(('v1', hp, wp, window_size, expand_size, focal_window, str(device)), build)


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
    rows = max(1, get_attention_settings().topk_chunk // n_keys)
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


def _build_v2_geometry(hw: Tuple[int, int], window_size: int, topk: int, device: torch.device) -> FocalV2Geometry:
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
    return FocalV2Geometry(
        grid=(nwh, nww), n_keys=(idx0.shape[1], idx1.shape[1]),
        index=torch.cat([idx0, idx1 + h * w], dim=1).flatten().to(device),
        key_pos=torch.cat([pos0, pos1], dim=1).to(device), window_pos=win.view(-1, 1, 1, 2).to(device),
        boxes=tuple(boxes), cols=cols,
        query_code=(query[..., 0] * cols + query[..., 1]).int().unsqueeze(-1).to(device),
        key_code=torch.cat(key_code, dim=1).int().unsqueeze(1).to(device))


def focal_v2_geometry(hw: Tuple[int, int], window_size: int, topk: int, device: torch.device) -> FocalV2Geometry:
    """The :class:`FocalV2Geometry` of an h×w map, computed on CPU once and cached per size and device.

    Args:
        hw: Real (unpadded) map size.
        window_size: Window side s.
        topk: Keys per level and window.
        device: Where the tables are used.
    """
    hw = (int(hw[0]), int(hw[1]))
    return cached_geometry(('v2', hw, window_size, topk, str(device)),
                           lambda: _build_v2_geometry(hw, window_size, topk, device))


def focal_v2_token_rows(hw: Tuple[int, int], window_size: int, topk: int, focal_level: int,
                        device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Focal-fast's gather tables into one row per *real* token (row-major), then one per pooled window.

    No key of a window is a pad token (level 0 reads real tokens only), and a pad query's output is cropped,
    so the fused paths project the h*w real tokens only (the pad rows of a map that is not a multiple of s
    are 12% of stage 3's tokens at 800x1333, 20% at 512x512). The tables address the ``[h*w real | pooled]``
    sources of :class:`FocalV2Geometry`; a pad query's slot is ``h*w``, one past the real rows. Cached per
    map size.

    Args:
        hw: Real (unpadded) map size.
        window_size: Window side s.
        topk: Keys per level and window.
        focal_level: Levels attended (1: the level-0 keys of each window only).
        device: Where the tables are used.

    Returns:
        ``slots`` (nW * s*s,) long, the row of every query of every window (window-major, row-major inside;
        ``h*w`` for a pad query), and ``keys`` (nW * N,) long, the row of every key of every window.
    """
    h, w = int(hw[0]), int(hw[1])
    s = window_size

    def build() -> Tuple[torch.Tensor, torch.Tensor]:
        geo = focal_v2_geometry((h, w), s, topk, torch.device('cpu'))
        (nwh, nww), (n0, n1) = geo.grid, geo.n_keys
        keys = geo.index.view(nwh * nww, n0 + n1)[:, :n0 if focal_level == 1 else n0 + n1]
        a, i = torch.arange(nwh).view(-1, 1, 1, 1), torch.arange(s).view(1, 1, -1, 1)
        b, j = torch.arange(nww).view(1, -1, 1, 1), torch.arange(s).view(1, 1, 1, -1)
        row, col = a * s + i, b * s + j  # (nWh, nWw, s, s): window (a, b), query (i, j)
        slots = torch.where((row < h) & (col < w), row * w + col, h * w)
        return slots.flatten().to(device), keys.flatten().to(device)

    return cached_geometry(('v2', (h, w), s, topk, str(device), 'token_rows', focal_level), build)


def focal_v2_bias_rows(hw: Tuple[int, int], window_size: int, topk: int, focal_level: int,
                       device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Focal-fast's bias lookup by rows: one row of s*s table entries per distinct (window, key) offset.

    The table entry of query q of window w and its key k is ``query_code[w, q] - key_code[w, k]``, which is
    that of the window's first query plus the query's offset inside the window. So the biases of one key for
    all queries of its window are one row ``table[:, codes[u]]``, where u is the key's position relative to
    its window; the fused paths gather such rows (hundreds of bytes each) instead of one value per pair.
    Cached per map size; arguments as for :func:`focal_v2_token_rows`.

    Returns:
        ``codes`` (U, s*s) long, the table entries of every distinct relative key position for every query of a
        window, and ``rows`` (nW * N,) long, the row of ``codes`` of every key of every window.
    """
    h, w = int(hw[0]), int(hw[1])

    def build() -> Tuple[torch.Tensor, torch.Tensor]:
        geo = focal_v2_geometry((h, w), window_size, topk, torch.device('cpu'))
        n0, n1 = geo.n_keys
        first = geo.query_code[:, :1, :] - geo.key_code[:, :, :n0 if focal_level == 1 else n0 + n1]  # (nW, 1, N)
        distinct, rows = torch.unique(first.flatten(), return_inverse=True)
        inside = geo.query_code[0, :, 0] - geo.query_code[0, 0, 0]  # (s*s,) the same for every window
        codes = distinct.long()[:, None] + inside.long()[None, :]
        return codes.to(device), rows.to(device)

    return cached_geometry(('v2', (h, w), window_size, topk, str(device), 'bias_rows', focal_level), build)
