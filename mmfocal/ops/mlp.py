"""The second half of a block, ``x + fc2(GELU(fc1(LN(x))))``, piece by piece in reused buffers.

Eagerly, each of LN, fc1, GELU and fc2 writes a fresh whole-map tensor: at 800×1333 the stage-1 hidden
activations are 100 MiB, each allocation comes from fresh pages, and faulting them in plus the bias copy of
``addmm`` cost more than the GEMMs (the stage-1 MLP at 800×1333, 2 threads: 115-120 ms eagerly, 55-58 ms in
pieces, 2026-12-03). At inference pieces of rows run the four steps in reused buffers that stay in cache and
add the result into ``x``, which therefore must be a tensor the caller owns. In training on CPU,
:class:`MlpResidualCore` does the same and keeps only fc1's output for its backward pass.
"""

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dispatch import compiling, exporting
from .scratch import pieces, scratch

__all__ = ['MlpResidualCore', 'fused_mlp_applies', 'fused_mlp_residual_', 'mlp_core_applies', 'mlp_residual_core']


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


class MlpResidualCore(torch.autograd.Function):
    """Training ``x + scale * fc2(GELU(fc1(LN(x))))`` on CPU, in pieces of rows with reused buffers.

    Autograd through the modules keeps the norm's output, fc1's output and the GELU's output of every token
    (9C values per token at an MLP ratio of 4) and writes every intermediate and gradient into a fresh
    whole-map tensor, whose pages are faulted in again at every step. Here only fc1's output is kept (with
    the norm's per-token mean and reciprocal std); backward recomputes the norm and the GELU per piece into
    reused buffers and accumulates the weight gradients piece by piece. ``scale`` (rows, 1) is stochastic
    depth's per-sample factor (0 or 1 / keep probability), or None.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor, fc1_weight: torch.Tensor,
                fc1_bias: torch.Tensor, fc2_weight: torch.Tensor, fc2_bias: torch.Tensor, eps: float,
                scale: Optional[torch.Tensor]) -> torch.Tensor:
        rows, c = x.shape
        hidden = fc1_weight.shape[0]
        h = x.new_empty(rows, hidden)  # kept for backward
        mean = x.new_empty(rows, 1, dtype=torch.float32 if x.dtype != torch.float64 else x.dtype)
        rstd = torch.empty_like(mean)
        out = torch.empty_like(x)
        # pieces of piece_bytes of hidden and output rows (~8k rows at C=96): the weight gradients are GEMMs over
        # a piece's rows, and larger pieces run them faster than the L2-sized pieces of inference
        parts = pieces(rows, (hidden + c) * x.element_size(), x.device)
        for part in parts:
            normed, mean[part], rstd[part] = torch.native_layer_norm(x[part], [c], norm_weight, norm_bias, eps)
            torch.addmm(fc1_bias, normed, fc1_weight.t(), out=h[part])
            a = torch.ops.aten.gelu.out(h[part], out=scratch.get('mlp_hidden', (part.stop - part.start, hidden), x))
            y = torch.addmm(fc2_bias, a, fc2_weight.t(), out=out[part])
            if scale is not None:
                y.mul_(scale[part])
            y.add_(x[part])
        ctx.save_for_backward(x, norm_weight, norm_bias, fc1_weight, fc2_weight, h, mean, rstd, scale)
        ctx.parts, ctx.eps, ctx.has_bias = parts, eps, (fc1_bias is not None, fc2_bias is not None)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple:
        x, norm_weight, norm_bias, fc1_weight, fc2_weight, h, mean, rstd, scale = ctx.saved_tensors
        c, hidden = x.shape[1], h.shape[1]
        grad_out = grad_out.contiguous()
        grad_x = torch.empty_like(x)
        grads = [torch.zeros_like(t) for t in (norm_weight, norm_bias, fc1_weight)]
        grad_fc1_bias = x.new_zeros(hidden)
        grad_fc2_weight = torch.zeros_like(fc2_weight)
        grad_fc2_bias = x.new_zeros(c)
        for part in ctx.parts:
            n = part.stop - part.start
            g = grad_out[part]
            if scale is not None:
                g = torch.mul(g, scale[part], out=scratch.get('mlp_grad_out', (n, c), x))
            a = torch.ops.aten.gelu.out(h[part], out=scratch.get('mlp_hidden', (n, hidden), x))
            grad_fc2_weight.addmm_(g.t(), a)
            grad_fc2_bias += g.sum(0)
            grad_h = torch.mm(g, fc2_weight, out=scratch.get('mlp_grad_hidden', (n, hidden), x))
            torch.ops.aten.gelu_backward.grad_input(grad_h, h[part], grad_input=grad_h)  # in place, elementwise
            normed = torch.native_layer_norm(x[part], [c], norm_weight, norm_bias, ctx.eps)[0]
            grads[2].addmm_(grad_h.t(), normed)
            grad_fc1_bias += grad_h.sum(0)
            grad_normed = torch.mm(grad_h, fc1_weight, out=scratch.get('mlp_grad_normed', (n, c), x))
            gx, gw, gb = torch.ops.aten.native_layer_norm_backward(grad_normed, x[part], [c], mean[part], rstd[part],
                                                                   norm_weight, norm_bias, [True, True, True])
            torch.add(grad_out[part], gx, out=grad_x[part])
            grads[0] += gw
            grads[1] += gb
        return (grad_x, grads[0], grads[1], grads[2], grad_fc1_bias if ctx.has_bias[0] else None, grad_fc2_weight,
                grad_fc2_bias if ctx.has_bias[1] else None, None, None)


def mlp_core_applies(x: torch.Tensor, norm: nn.Module, fc1: nn.Linear, act: nn.Module, fc2: nn.Linear,
                     dropout: bool) -> bool:
    """Whether :func:`mlp_residual_core` computes what the modules would, gradients included, here and now.

    In training on CPU (with autograd), outside exports, ``torch.compile`` and autocast, for a LayerNorm, an
    exact GELU, linear layers with biases, float32 / float64 tensors and no active dropout (stochastic depth is
    handled).

    Args:
        x: The block's tokens.
        norm: The norm before the MLP.
        fc1: First linear layer.
        act: The activation.
        fc2: Second linear layer.
        dropout: Whether the MLP's dropout is active in this call.
    """
    return (torch.is_grad_enabled() and x.device.type == 'cpu' and not dropout and not exporting()
            and not compiling() and not torch.is_autocast_cpu_enabled() and type(norm) is nn.LayerNorm
            and norm.weight is not None and norm.bias is not None and type(act) is nn.GELU
            and act.approximate == 'none' and fc1.bias is not None and fc2.bias is not None
            and x.dtype in (torch.float32, torch.float64) and x.dtype == fc1.weight.dtype)


def mlp_residual_core(x: torch.Tensor, norm: nn.LayerNorm, fc1: nn.Linear, fc2: nn.Linear,
                      drop_path_prob: float = 0.) -> torch.Tensor:
    """``x + drop_path(fc2(GELU(fc1(norm(x)))))`` through :class:`MlpResidualCore` (differentiable).

    Args:
        x: (B, ..., C) tokens.
        norm: LayerNorm over C.
        fc1: Linear C -> hidden.
        fc2: Linear hidden -> C.
        drop_path_prob: Stochastic depth's drop probability in this call (0: none). The per-sample mask is
            drawn as mmcv's ``drop_path`` draws it (one ``torch.rand`` of B values), so a seeded run drops the
            same samples either way.

    Returns:
        A new (B, ..., C) tensor.
    """
    b, c = x.shape[0], x.shape[-1]
    scale = None
    if drop_path_prob > 0.:
        keep = 1. - drop_path_prob
        mask = (keep + torch.rand((b, ) + (1, ) * (x.ndim - 1), dtype=x.dtype, device=x.device)).floor_()
        scale = (mask / keep).expand(*x.shape[:-1], 1).reshape(-1, 1)
    if x.requires_grad:
        scratch.keep_until_backward(x)  # its backward reuses this forward's buffers
    out = MlpResidualCore.apply(x.reshape(-1, c), norm.weight, norm.bias, fc1.weight, fc1.bias, fc2.weight,
                                fc2.bias, norm.eps, scale)
    return out.view(x.shape)
