"""Which implementation an attention call takes, and the one cache of per-map-size gather tables.

The attention layers of both families describe *what* they compute; :func:`choose_path` decides *how*, from
the device, the grad mode, whether the model is being exported or traced, and :mod:`~mmfocal.ops.settings`.
"""

import contextlib
import enum
from collections import OrderedDict
from typing import Any, Callable, Hashable, Iterator, Tuple

import torch
import torch.nn.functional as F

from .settings import get_attention_settings

__all__ = ['AttentionPath', 'choose_path', 'compiling', 'exporting', 'cached_geometry', 'clear_geometry_cache',
           'fc_window_pool', 'pad_bottom_right', 'token_conv']


class AttentionPath(enum.Enum):
    """The implementations of a focal attention call.

    * ``REFERENCE``: the official formulation with standard operators (explicit logits and softmax). Taken for
      ``attn_impl='reference'``, for attention dropout (which drops every key on its own, as the official
      code does) and while exporting or tracing (exporters cannot follow custom autograd functions or
      reused buffers).
    * ``FUSED``: no autograd; keys gathered piece by piece into reused buffers, a fused kernel per piece.
    * ``CORE``: training through the family's own ``autograd.Function`` (saves the key sources, not the
      gathered keys; hand-written backward).
    * ``AUTOGRAD``: the fast path's keys (one gather, a bias per distinct offset) through standard operators and
      autograd, no piece loops and no reused buffers: training where no core applies (Focal-fast off the CPU),
      and every call under ``torch.compile`` (its compilers trace neither the cores' in-place buffer reuse nor
      Python piece loops cheaply, and fuse the whole-tensor formulation themselves).
    """

    REFERENCE = 'reference'
    FUSED = 'fused'
    CORE = 'core'
    AUTOGRAD = 'autograd'


def exporting() -> bool:
    """Whether the model is being exported or traced (ONNX, TorchScript tracing, ``torch.export``)."""
    is_exporting = getattr(getattr(torch, 'compiler', None), 'is_exporting', None)  # newer torch only
    return bool(torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or (is_exporting and is_exporting()))


def compiling() -> bool:
    """Whether ``torch.compile`` (dynamo) is tracing the call."""
    compiler = getattr(torch, 'compiler', None)
    if compiler is not None and hasattr(compiler, 'is_compiling'):
        return bool(compiler.is_compiling())
    return bool(torch._dynamo.is_compiling())  # torch < 2.3


def tables_before_trace() -> bool:
    """Whether a backbone builds its gather tables eagerly before the trace: under ``torch.compile``, but not in
    an export, which takes the reference path and needs none."""
    return compiling() and not exporting()


def choose_path(family: str, impl: str, device: torch.device, needs_grad: bool,
                dropout: bool = False) -> AttentionPath:
    """The implementation of one attention call.

    Args:
        family: ``'v1'`` (focal attention) or ``'v2'`` (Focal-fast).
        impl: The layer's ``attn_impl``: ``'fast'`` or ``'reference'``.
        device: Where the call runs.
        needs_grad: Whether autograd needs the call's graph (grad mode on and an input that requires grad).
        dropout: Whether attention dropout is active (training with ``attn_drop > 0``).
    """
    if impl == 'reference' or dropout or exporting():
        return AttentionPath.REFERENCE
    if compiling() or device.type == 'meta':  # standard differentiable operators: dynamo and shape-only tensors
        return AttentionPath.AUTOGRAD
    if not needs_grad:
        return AttentionPath.FUSED
    if family == 'v1' or device.type == 'cpu':
        # on CPU both cores keep the log-sum-exp (from the flash op, or from explicit logits per piece where
        # torch < 2.4 lacks it); elsewhere v1's keeps the probabilities and Focal-fast trains through autograd
        return AttentionPath.CORE
    return AttentionPath.AUTOGRAD


def pad_bottom_right(x: torch.Tensor, multiple: int, channels_last: bool) -> Tuple[torch.Tensor, bool]:
    """Zero-pad a map at the bottom and right to multiples of ``multiple``; the map and whether it was padded.

    An eager call leaves a map that needs no padding as it is. An exported or traced graph always pads (by zero
    where nothing is needed): the tracer records the pad amounts as functions of the input size, but a pad that
    was skipped at the traced size would be missing from the graph at every other size.

    Args:
        x: (B, H, W, C) with ``channels_last``, else (B, C, H, W).
        multiple: The window or patch size.
        channels_last: Layout of ``x``.
    """
    h, w = x.shape[1:3] if channels_last else x.shape[2:4]
    pad_b, pad_r = (multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple
    if not (pad_b or pad_r or exporting()):
        return x, False
    return F.pad(x, (0, 0, 0, pad_r, 0, pad_b) if channels_last else (0, pad_r, 0, pad_b)), True


def fc_window_pool(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Each s×s window of a (B, Hp, Wp, C) map pooled to ``sum(weight * window) + bias``: (B, Hp/s, Wp/s, C).

    Without autograd a depth-wise convolution on the channels-last map (no (B, nWh, nWw, C, s*s) copy of the
    windows): 0.26 against 2.2 ms at 8 x 56 x 56 x 96, 0.58 against 1.9 ms at 203 x 336 x 96 (2 threads,
    2026-12-06). Its backward took 2-2.3x the einsum's at detection sizes, so training keeps the einsum, as do
    exported graphs and CPU fp16 (torch 2.1 has no fp16 convolution on CPU).

    Args:
        x: The padded map, Hp and Wp multiples of s.
        weight: (s, s) weights of the window positions, shared by the channels.
        bias: (1,) bias.
    """
    b, hp, wp, c = x.shape
    s = weight.shape[0]
    if not torch.is_grad_enabled() and not exporting() and (x.device.type != 'cpu' or x.dtype != torch.float16):
        out = F.conv2d(x.permute(0, 3, 1, 2), weight.expand(c, 1, s, s), bias.expand(c), stride=s, groups=c)
        return out.permute(0, 2, 3, 1)
    return torch.einsum('bhiwjc,ij->bhwc', x.view(b, hp // s, s, wp // s, s, c), weight) + bias


def token_conv(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` with the output channels-last in memory, so that ``flatten(2).transpose(1, 2)`` is contiguous.

    oneDNN and cuDNN take the layout of the weight: with a channels-last weight the (B, C, H, W) view of a
    stage's (B, H*W, C) tokens is read as it is and (B, H', W', C') tokens are written, so neither the input, the
    output nor their gradients are copied to another layout (the stem's 3-channel image is). The Focal-fast-T
    training step of one 800x1333 image, its four convolutions and their LayerNorms: 583 -> 390 ms (2 threads,
    2026-12-06). Exported and traced graphs, and convolutions padding otherwise than with zeros, take the module's
    own call.

    Args:
        x: (B, C, H, W) input, any layout.
        conv: A 2-d convolution.
    """
    if exporting() or conv.padding_mode != 'zeros':
        return conv(x)
    return F.conv2d(x, conv.weight.contiguous(memory_format=torch.channels_last), conv.bias, conv.stride,
                    conv.padding, conv.dilation, conv.groups)


def token_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` over contiguous (..., C) tokens.

    On CPU without autograd (inference), oneDNN's 1x1 convolution of the tokens' channels-last (1, C, N, 1) view:
    the same products, faster there than the GEMM ``F.linear`` runs (docs/speed.md, FocalNet), and the view and
    the result need no copy. Everywhere else (autograd, other devices and dtypes, exported or compiled graphs)
    ``F.linear``.

    Args:
        x: (..., C) tokens.
        weight: (C_out, C) weights (or any shape of C_out * C elements, such as a 1x1 convolution's).
        bias: (C_out,) bias.
    """
    c, out_channels = x.shape[-1], weight.shape[0]
    weight = weight.reshape(out_channels, c)
    if (x.device.type != 'cpu' or torch.is_grad_enabled() or x.dtype != torch.float32 or not x.is_contiguous()
            or exporting() or compiling()):
        return F.linear(x, weight, bias)
    rows = x.numel() // c
    out = F.conv2d(x.reshape(1, rows, 1, c).permute(0, 3, 1, 2), weight.reshape(out_channels, c, 1, 1), bias)
    return out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], out_channels)


_GEOMETRY_CACHE: 'OrderedDict[Hashable, Any]' = OrderedDict()


def cached_geometry(key: Hashable, build: Callable[[], Any]) -> Any:
    """The gather tables of ``key`` (family, map size, layer settings, device), built once: least recently used.

    One cache for both families, bounded by ``AttentionSettings.geometry_cache_size``: blocks of a stage share
    their tables, and multi-scale training sees many map sizes.
    """
    value = _GEOMETRY_CACHE.get(key)
    if value is None and exporting() and compiling():
        # torch.export traces with fake tensors, whose values a nearest-key search cannot read: the tables are
        # constants of the (static) map size, so they are computed for real and enter the graph as constants
        with _real_tensors():
            return build()
    if compiling():
        # read-only while dynamo traces: the backbone filled the cache before tracing (FocalBackbone), and a
        # reordered cache would fail the guards on it and recompile every call
        return build() if value is None else value
    if value is not None:
        _GEOMETRY_CACHE.move_to_end(key)
        return value
    # normal tensors even when the first call runs under torch.inference_mode: a later training step saves
    # some of them for its backward, which inference tensors refuse
    with torch.inference_mode(False):
        value = _GEOMETRY_CACHE[key] = build()
    while len(_GEOMETRY_CACHE) > max(1, get_attention_settings().geometry_cache_size):
        _GEOMETRY_CACHE.popitem(last=False)
    return value


@contextlib.contextmanager
def _real_tensors() -> Iterator[None]:
    """Suspend the fake-tensor and proxy modes of an export trace (tensors made inside are real ones)."""
    from torch._subclasses import fake_tensor
    from torch.fx.experimental import proxy_tensor
    with fake_tensor.unset_fake_temporarily(), proxy_tensor.disable_proxy_modes_tracing():
        yield


def clear_geometry_cache() -> None:
    """Forget every cached gather table (they are rebuilt on use)."""
    _GEOMETRY_CACHE.clear()
