"""Focal attention geometry: expand-ring offsets, relative-position indices, windows, key gather index.

Everything here depends only on (window size, ring width, focal window) or on the padded map size,
never on weights; :func:`window_key_index` is what the fast path gathers keys with.
"""

from typing import List, Optional, Tuple

import torch

__all__ = ['MASK_VALUE', 'expand_ring_offsets', 'expand_ring_valid_index', 'ring_duplicates',
           'relative_position_index', 'window_partition', 'window_reverse', 'window_key_index']

# Additive mask value of the official code (Swin convention); finite, so fp16/bf16 stay finite.
MASK_VALUE = -100.0

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
    the source token and can travel with it through the gather.

    Args:
        hp: Padded map height (a multiple of ``window_size``).
        wp: Padded map width.
        window_size: Window side s.
        ring_offsets: (R, 2) window-local offsets of the ring keys (distinct ones), or None without a ring.
        focal_window: Pooled neighbourhood side fw, or None without a pooled level.

    Returns:
        index (nW, N) long; mask (T,) with 0 / -100 per source token, or None when nothing is masked.
        Both on the CPU.
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
            grid = torch.full((nwh + 2 * p, nww + 2 * p), MASK_VALUE)
            grid[p:p + nwh, p:p + nww] = 0
            mask = torch.cat([torch.zeros(hp * wp), grid.flatten()])
    return torch.cat(index, dim=1), mask
