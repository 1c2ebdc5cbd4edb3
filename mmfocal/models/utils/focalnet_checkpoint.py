"""FocalNet checkpoints: find the backbone in any released layout and make it fit the model.

Three layouts hold FocalNet weights, all read into the official names our backbone uses:

* the official classification releases, ``{'model': {patch_embed.*, layers.*, norm.*, head.*}}``;
* the official mmdet 2.x / mmseg 0.x releases, ``{'state_dict': {backbone.*, neck.*, ...}}`` (FocalNet-DINO:
  ``backbone.0.*``), with per-output norms ``norm{i}`` and the detection focal kernels;
* timm's (``stem.*``, the downsampling at the start of the next stage, 1×1 convolutions for the linear layers,
  ``ls1.gamma``, ``norm1_post``, ``head.fc``).

Then the official detection loader's rule adapts what the configuration changes: a focal kernel of another side
is zero-padded around its centre (or centre-cropped), which computes exactly what the smaller kernel did, and
when the model has more focal levels than the checkpoint the gate rows of ``modulation.f`` are placed in order
(the global gate last) with the new levels' gates at zero. Pure functions: the backbone's loader, its load
pre-hook and ``tools/model_converters/focalnet2mmfocal.py`` share them.
"""

import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from .focal_checkpoint import (FOCALNET_CHECKPOINTS, FOCALNET_RELEASE_BASE, CheckpointMismatchError,
                               checkpoint_tensors)

__all__ = ['focalnet_backbone_state_dict', 'timm_to_official', 'adapt_focalnet_state_dict', 'is_timm_layout',
           'final_norm_to_output', 'describe_adaptations', 'FOCALNET_RELEASE_BASE', 'FOCALNET_CHECKPOINTS']

_KERNEL = re.compile(r'modulation\.focal_layers\.\d+\.0\.weight$')
_GATES = re.compile(r'modulation\.f\.(weight|bias)$')


def is_timm_layout(state: Mapping[str, Any]) -> bool:
    """Whether the tensors are in timm's FocalNet layout (its stem is ``stem.proj``)."""
    return any(k == 'stem.proj.weight' or k.endswith('.stem.proj.weight') for k in state)


def timm_to_official(state: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """timm's FocalNet names as the official ones (the inverse of timm's ``checkpoint_filter_fn``).

    The linear layers timm stores as 1×1 convolutions become (out, in) matrices; ``h`` stays a 1×1 convolution
    (it is one in the official files too).

    Args:
        state: A timm FocalNet state dict.

    Returns:
        The same tensors under the official names.
    """
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in state.items():
        name = key
        if name.startswith('stem.'):
            name = 'patch_embed.' + name[len('stem.'):]
        match = re.match(r'layers\.(\d+)\.downsample\.(.*)$', name)
        if match:  # timm's stage i opens with the downsampling that ends the official stage i - 1
            name = f'layers.{int(match.group(1)) - 1}.downsample.{match.group(2)}'
        name = re.sub(r'\.ls([12])\.gamma$', r'.gamma_\1', name)
        name = re.sub(r'\.norm([12])_post\.', r'.norm\1.', name)
        name = name.replace('.modulation.norm.', '.modulation.ln.')
        if name.startswith('head.fc.'):
            name = 'head.' + name[len('head.fc.'):]
        if value.dim() == 4 and value.shape[2:] == (1, 1) and re.search(
                r'\.(modulation\.(f|proj)|mlp\.fc[12])\.weight$', name):
            value = value.flatten(1)
        out[name] = value
    return out


def focalnet_backbone_state_dict(checkpoint: Any) -> Tuple['OrderedDict[str, torch.Tensor]', str]:
    """The FocalNet backbone tensors of a checkpoint in any supported layout, under the official names.

    Args:
        checkpoint: What ``torch.load`` returned: ``{'model': ...}``, ``{'state_dict': ...}``, a bare state dict,
            with ``module.`` (DDP), ``backbone.`` (mmdet / mmseg) or ``backbone.0.`` (FocalNet-DINO) prefixes,
            in the official or timm's names.

    Returns:
        (tensors, the layout's name for reports: ``'official'``, ``'mmdet'`` or ``'timm'``).
    """
    tensors = checkpoint_tensors(checkpoint)
    layout = 'official'
    for prefix in ('backbone.0.', 'backbone.'):
        if any(k.startswith(prefix) for k in tensors):
            tensors = OrderedDict((k[len(prefix):], v) for k, v in tensors.items() if k.startswith(prefix))
            layout = 'mmdet'
            break
    if is_timm_layout(tensors):
        tensors, layout = timm_to_official(tensors), 'timm'
    if not any('.modulation.' in k for k in tensors):
        hint = (' (these are Focal Transformer weights: use FocalTransformer / FocalTransformerV2)'
                if any('.attn.' in k for k in tensors) else '')
        raise CheckpointMismatchError(
            'No FocalNet weights in this checkpoint: expected keys such as '
            f"'layers.0.blocks.0.modulation.f.weight', found e.g. {list(tensors)[:4]}{hint}.")
    return tensors, layout


def _resize_kernel(kernel: torch.Tensor, side: int) -> torch.Tensor:
    """A (C, 1, k, k) depth-wise kernel zero-padded around its centre (or centre-cropped) to side × side."""
    k = kernel.shape[-1]
    if side >= k:
        out = kernel.new_zeros(kernel.shape[:2] + (side, side))
        start = (side - k) // 2
        out[..., start:start + k, start:start + k] = kernel
        return out
    start = (k - side) // 2
    return kernel[..., start:start + side, start:start + side].clone()


def _place_gates(value: torch.Tensor, want: torch.Size, key: str) -> torch.Tensor:
    """``modulation.f`` rows of L levels placed into a model with more: q, ctx and level gates in order, the global
    gate last, the new levels' gates zero."""
    rows_have, rows_want = value.shape[0], want[0]
    if rows_have > rows_want:
        raise CheckpointMismatchError(
            f'{key}: the checkpoint has {rows_have - rows_want} more focal levels than the model ({tuple(value.shape)}'
            f' -> {tuple(want)}); give the model at least the checkpoint\'s focal_levels.')
    out = value.new_zeros(want)
    out[:rows_have - 1] = value[:-1]
    out[-1] = value[-1]
    return out


def adapt_focalnet_state_dict(state: Dict[str, torch.Tensor], model_state: Mapping[str, torch.Tensor],
                              prefix: str = '') -> Tuple[List[str], List[str]]:
    """Make official-name tensors fit the model in place: focal kernels and gate rows of another focal setting.

    Any other shape difference is an error naming the tensor, both shapes and what to check.

    Args:
        state: Incoming tensors (modified in place).
        model_state: The model's own state dict (names without ``prefix``).
        prefix: Where the backbone sits inside ``state``.

    Returns:
        (resized kernels, expanded gate tensors), as ``name a->b`` notes.
    """
    kernels, gates = [], []
    for key in list(state):
        if not key.startswith(prefix):
            continue
        local = key[len(prefix):]
        if local not in model_state:
            continue
        value, want = state[key], model_state[local].shape
        if value.shape == want:
            continue
        if _KERNEL.search(local) and value.dim() == 4 and value.shape[:2] == want[:2]:
            state[key] = _resize_kernel(value, want[-1])
            kernels.append(f'{local} {value.shape[-1]}->{want[-1]}')
        elif _GATES.search(local) and value.shape[1:] == want[1:] and value.shape[0] != want[0]:
            state[key] = _place_gates(value, want, local)
            gates.append(f'{local} {value.shape[0]}->{want[0]} rows')
        else:
            raise CheckpointMismatchError(
                f'{local}: checkpoint shape {tuple(value.shape)} does not match the model {tuple(want)}: the '
                'checkpoint is for another FocalNet (check arch, embed_dims, depths, use_conv_embed).')
    return kernels, gates


def final_norm_to_output(state: Dict[str, torch.Tensor], model_state: Mapping[str, torch.Tensor],
                         last_stage: int) -> Optional[str]:
    """The classifier's final ``norm`` as the last stage's output norm, when the model has that norm and the file
    does not (the classifier applies ``norm`` exactly where the backbone applies ``norm{last}``).

    Args:
        state: Incoming tensors (modified in place).
        model_state: The model's own state dict.
        last_stage: Index of the model's last stage.

    Returns:
        A note when renamed, else None.
    """
    last = f'norm{last_stage}'
    if 'norm.weight' not in state or f'{last}.weight' not in model_state or f'{last}.weight' in state:
        return None
    for p in ('weight', 'bias'):
        if f'norm.{p}' in state:
            state[f'{last}.{p}'] = state.pop(f'norm.{p}')
    return f'norm -> {last}'


def describe_adaptations(kernels: List[str], gates: List[str]) -> List[str]:
    """The notes of :func:`adapt_focalnet_state_dict` as at most two report lines: each distinct kernel change with
    its count, and the gate tensors expanded.

    Args:
        kernels: ``'name a->b'`` notes of resized kernels.
        gates: ``'name a->b rows'`` notes of expanded gate tensors.
    """
    out = []
    if kernels:
        changes: Dict[str, int] = {}
        for note in kernels:
            change = note.rsplit(' ', 1)[1]
            changes[change] = changes.get(change, 0) + 1
        out.append('focal kernels zero-padded (or centre-cropped) as the official detection loader does: ' +
                   ', '.join(f'{c} ({n}x)' for c, n in changes.items()))
    if gates:
        out.append(f'gate rows of {len(gates)} modulation.f tensors placed for more focal levels (new levels gated '
                   f'0), e.g. {gates[0]}')
    return out
