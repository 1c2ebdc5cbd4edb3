"""The blocks' MLP on CPU in pieces of rows: at inference ``x + fc2(GELU(fc1(LN(x))))`` in place, in training
``fc2(GELU(fc1(x)))`` through :class:`MlpCore`.

Eagerly, each of LN, fc1, GELU and fc2 writes a fresh whole-map tensor: at 800×1333 the stage-1 hidden
activations are 100 MiB, each allocation comes from fresh pages, and faulting them in plus the bias copy of
``addmm`` cost more than the GEMMs (the stage-1 MLP at 800×1333, 2 threads: 115-120 ms eagerly, 55-58 ms in
pieces, 2026-12-03). Pieces of rows run the four steps in reused buffers that stay in cache and add the
result into ``x``, which therefore must be a tensor the caller owns. Training does the same with the three
steps after the norm, keeps only fc1's output for the backward pass (GELU is recomputed there, piece by piece)
and never writes a whole-map hidden gradient.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .dispatch import compiling, exporting
from .scratch import pieces, scratch

__all__ = ['MlpCore', 'fused_mlp_applies', 'fused_mlp_residual_', 'mlp_training', 'mlp_training_applies']


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
    return (not torch.is_grad_enabled() and not stochastic and type(norm) is nn.LayerNorm and x.is_contiguous()
            and _pieces_compute_the_modules(x, fc1, act, fc2))


def _pieces_compute_the_modules(x: torch.Tensor, fc1: nn.Linear, act: nn.Module, fc2: nn.Linear) -> bool:
    """What both piece loops need to compute what the modules would: not traced (exports and ``torch.compile``
    take the modules themselves), an exact GELU, both biases (``addmm``), the weights' dtype."""
    return (not exporting() and not compiling() and type(act) is nn.GELU and act.approximate == 'none'
            and fc1.bias is not None and fc2.bias is not None and x.dtype == fc1.weight.dtype == fc2.weight.dtype)


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


def _autocast_on(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (torch 2.1 has only the per-device query functions)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device_type == 'cpu' else torch.is_autocast_enabled()


def _training_pieces(rows: int, channels: int, hidden: int, like: torch.Tensor) -> list:
    """Pieces of rows whose input, hidden activations and their gradient fill about half of ``piece_bytes``."""
    return pieces(rows, 2 * (hidden + channels) * like.element_size(), like.device)


def mlp_training_applies(x: torch.Tensor, fc1: nn.Linear, act: nn.Module, fc2: nn.Linear,
                         dropout: bool) -> bool:
    """Whether :func:`mlp_training` computes what the modules would, here, and is worth it.

    Only on CPU with autograd recording (some input needs a gradient), outside exports, ``torch.compile`` and
    autocast (which trace or recast the modules themselves), with an exact GELU, biases, no active dropout, the
    weights' dtype, and more rows than one piece: a map of one piece has nothing to cut, and recomputing GELU
    made the stage-4 MLP at 800×1333 ~5% slower (2026-12-06).

    Args:
        x: (..., C) input of fc1.
        fc1: First linear layer.
        act: The activation.
        fc2: Second linear layer.
        dropout: Whether the MLP's dropout is active in this call.
    """
    if (x.device.type != 'cpu' or not torch.is_grad_enabled() or dropout or _autocast_on('cpu')
            or not _pieces_compute_the_modules(x, fc1, act, fc2)):
        return False
    if not any(t.requires_grad for t in (x, fc1.weight, fc1.bias, fc2.weight, fc2.bias)):
        return False
    rows = x.numel() // x.shape[-1]
    return len(_training_pieces(rows, x.shape[-1], fc1.out_features, x)) > 1


class MlpCore(torch.autograd.Function):
    """``fc2(GELU(fc1(x)))`` over (T, C) rows, piece by piece, with a hand-written backward.

    Forward writes fc1's output into the one tensor it saves and the output into another, GELU into a reused
    buffer. Backward recomputes each piece's GELU into a reused buffer, forms the piece's hidden gradient there,
    adds the piece's share of every weight and bias gradient and writes its input gradient: no whole-map GELU
    output is kept (autograd's fc2 keeps it for its weight gradient) and no whole-map hidden gradient is
    written. The same products as the modules' (at 800×1333 the outputs and input gradients were bit for bit
    the modules', 2026-12-06); the weight gradients are sums over pieces, another order of the same terms
    (within 5e-7 relative).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                b2: torch.Tensor) -> torch.Tensor:
        t, hidden = x.shape[0], w1.shape[0]
        out = x.new_empty(t, w2.shape[0])
        pre = x.new_empty(t, hidden)  # fc1's output, saved
        parts = _training_pieces(t, x.shape[1], hidden, x)
        for part in parts:
            torch.addmm(b1, x[part], w1.t(), out=pre[part])
            act = torch.ops.aten.gelu.out(pre[part], out=scratch.get('mlp_act', (part.stop - part.start, hidden), x))
            torch.addmm(b2, act, w2.t(), out=out[part])
        ctx.save_for_backward(x, pre, w1, w2)
        ctx.parts = parts
        return out

    @staticmethod
    @once_differentiable  # a second derivative: autograd's one clear error, not a failure inside this backward
    def backward(ctx, grad_out: torch.Tensor) -> tuple:
        x, pre, w1, w2 = ctx.saved_tensors
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad
        grad_out = grad_out.contiguous()
        hidden = w1.shape[0]
        grad_x = x.new_empty(x.shape) if need_x else None
        grad_w1 = torch.zeros_like(w1) if need_w1 else None
        grad_b1 = torch.zeros_like(pre[0]) if need_b1 else None
        grad_w2 = torch.zeros_like(w2) if need_w2 else None
        for part in ctx.parts:
            n, go, p = part.stop - part.start, grad_out[part], pre[part]
            if need_w2:
                act = torch.ops.aten.gelu.out(p, out=scratch.get('mlp_act', (n, hidden), x))
                grad_w2.addmm_(go.t(), act)
            grad_h = torch.mm(go, w2, out=scratch.get('mlp_grad_hidden', (n, hidden), x))
            torch.ops.aten.gelu_backward.grad_input(grad_h, p, grad_input=grad_h)  # elementwise: in place
            if need_b1:
                grad_b1.add_(grad_h.sum(0))
            if need_w1:
                grad_w1.addmm_(grad_h.t(), x[part])
            if need_x:
                torch.mm(grad_h, w1, out=grad_x[part])
        grad_b2 = grad_out.sum(0) if need_b2 else None
        return grad_x, grad_w1, grad_b1, grad_w2, grad_b2


def mlp_training(x: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear) -> torch.Tensor:
    """``fc2(GELU(fc1(x)))`` through :class:`MlpCore` (see :func:`mlp_training_applies`); the shape of ``x``.

    Args:
        x: (..., C) input.
        fc1: Linear C -> hidden, with a bias.
        fc2: Linear hidden -> C, with a bias.
    """
    if x.requires_grad:  # never a hook on a parameter: it would outlive this step
        scratch.keep_until_backward(x)
    out = MlpCore.apply(x.reshape(-1, x.shape[-1]).contiguous(), fc1.weight, fc1.bias, fc2.weight, fc2.bias)
    return out.view(*x.shape[:-1], out.shape[-1])
