"""The second half of a block at inference, ``x + fc2(GELU(fc1(LN(x))))``, piece by piece in place.

Eagerly, each of LN, fc1, GELU and fc2 writes a fresh whole-map tensor: at 800×1333 the stage-1 hidden
activations are 100 MiB, each allocation comes from fresh pages, and faulting them in plus the bias copy of
``addmm`` cost more than the GEMMs (the stage-1 MLP at 800×1333, 2 threads: 115-120 ms eagerly, 55-58 ms in
pieces, 2026-12-03). Pieces of rows run the four steps in reused buffers that stay in cache and add the
result into ``x``, which therefore must be a tensor the caller owns.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dispatch import compiling, exporting
from .scratch import pieces, scratch

__all__ = ['fused_mlp_applies', 'fused_mlp_residual_']


def fused_mlp_applies(x: torch.Tensor, norm: nn.Module, fc1: nn.Linear, act: nn.Module, fc2: nn.Linear,
                      stochastic: bool) -> bool:
    """Whether :func:`fused_mlp_residual_` computes exactly what the modules would, here and now.

    Only without autograd (in-place writes and reused buffers), outside exports and ``torch.compile`` (which
    trace the modules themselves), with a LayerNorm, an exact GELU and no active dropout or stochastic depth.

    Args:
        x: The block's tokens.
        norm: The norm before the MLP.
        fc1: First linear layer.
        act: The activation.
        fc2: Second linear layer.
        stochastic: Whether dropout or stochastic depth is active in this call.
    """
    return (not torch.is_grad_enabled() and not stochastic and not exporting() and not compiling()
            and type(norm) is nn.LayerNorm and type(act) is nn.GELU and act.approximate == 'none'
            and fc1.bias is not None and fc2.bias is not None and x.dtype == fc1.weight.dtype and x.is_contiguous())


def fused_mlp_residual_(x: torch.Tensor, norm: nn.LayerNorm, fc1: nn.Linear, fc2: nn.Linear) -> torch.Tensor:
    """``x += fc2(GELU(fc1(norm(x))))`` in place, in pieces of rows (see the module docstring).

    Args:
        x: (..., C) tokens, contiguous and owned by the caller (they are overwritten).
        norm: LayerNorm over C.
        fc1: Linear C -> hidden.
        fc2: Linear hidden -> C.

    Returns:
        ``x``.
    """
    rows = x.view(-1, x.shape[-1])
    hidden = fc1.out_features
    # a piece's rows of every step in a quarter of piece_bytes (2k rows of C=96): the hidden part stays in L2
    for part in pieces(rows.shape[0], 4 * (hidden + rows.shape[1]) * x.element_size(), x.device):
        chunk = rows[part]
        n = chunk.shape[0]
        normed = F.layer_norm(chunk, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        h = torch.addmm(fc1.bias, normed, fc1.weight.t(), out=scratch.get('mlp_hidden', (n, hidden), x))
        torch.ops.aten.gelu_(h)
        chunk.add_(torch.addmm(fc2.bias, h, fc2.weight.t(), out=scratch.get('mlp_out', (n, rows.shape[1]), x)))
    return x
