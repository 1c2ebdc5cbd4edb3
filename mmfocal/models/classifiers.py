"""The official ImageNet classifiers: a Focal backbone + final norm + global pooling + linear head.

:class:`FocalClassifier` (v1, plain or conv stem) and :class:`FocalV2Classifier` (Focal-fast) are the backbone
classes themselves with the official head on top, so the official state dicts fit them key for key (the final
``norm`` is our ``norm3``, see :func:`official_classifier_state_dict`) and every fast path, any input size and
the checkpoint checks of the backbone apply. They speak timm's model interface (``forward_features``,
``forward_head``, ``forward_intermediates``, ``reset_classifier``, ``set_grad_checkpointing``,
``feature_info``); :mod:`mmfocal.models.timm_models` registers them with timm.
"""

import contextlib
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from .backbones import FocalTransformer, FocalTransformerV2
from .backbones.focal_base import to_nchw
from .layers import init_linear_and_norms
from .utils.focal_checkpoint import (CheckpointMismatchError, adapt_state_dict, check_version_family,
                                     drop_derived_keys, extract_backbone_state_dict)

__all__ = ['FocalClassifier', 'FocalV2Classifier', 'official_classifier_state_dict', 'official_to_image_classifier']

_POOLS = ('avg', 'max', '')


class _ClassifierMixin:
    """The official head and timm's model interface on top of a :class:`~.FocalBackbone` family class.

    Args (besides the family's own, e.g. ``arch``, ``use_conv_embed``, ``drop_path_rate``):
        num_classes: Classes of the linear head; 0 gives pooled features (no head).
        global_pool: ``'avg'`` (official), ``'max'`` or ``''`` (no pooling: ``forward_head`` returns the map).
        in_chans: Image channels (timm's name).
        drop_rate: Dropout before the head (timm's meaning; the official models use 0).
        proj_drop_rate: Dropout after the blocks' projections and the stem (the official ``drop_rate``).
    """

    def __init__(self, num_classes: int = 1000, global_pool: str = 'avg', in_chans: int = 3, drop_rate: float = 0.,
                 proj_drop_rate: float = 0., device: Optional[Union[str, torch.device]] = None,
                 dtype: Optional[torch.dtype] = None, **kwargs: Any) -> None:
        name = type(self).__name__
        if 'in_channels' in kwargs:
            raise TypeError(f"{name}: the image channels are timm's in_chans (got in_channels).")
        for reserved in ('out_indices', 'frozen_stages'):
            if reserved in kwargs:
                raise TypeError(f'{name}: {reserved!r} is a backbone argument; for stage maps use '
                                'timm.create_model(..., features_only=True, out_indices=...).')
        if global_pool not in _POOLS:
            raise ValueError(f'{name}: global_pool={global_pool!r}: choose one of {_POOLS}.')
        # timm's factory arguments: every parameter and buffer made on `device` (e.g. 'meta': no memory), in `dtype`
        with torch.device(device) if device is not None else contextlib.nullcontext():
            self._build(num_classes, global_pool, in_chans, drop_rate, proj_drop_rate, **kwargs)
        if dtype is not None:
            self.to(dtype)

    def _build(self, num_classes: int, global_pool: str, in_chans: int, drop_rate: float, proj_drop_rate: float,
               **kwargs: Any) -> None:
        super().__init__(in_channels=in_chans, drop_rate=proj_drop_rate, out_indices=(3, ), **kwargs)
        self.num_stages = len(self.layers)
        self.in_chans = in_chans
        channels = [self.embed_dims * 2 ** i for i in range(self.num_stages)]
        # timm's attributes: the classifier input width and every stage as a feature (stride 4 .. 32)
        self.num_features = self.head_hidden_size = channels[-1]
        self.feature_info = [dict(num_chs=c, reduction=4 * 2 ** i, module=f'layers.{i}')
                             for i, c in enumerate(channels)]
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.reset_parameters()

    @property
    def norm(self) -> nn.Module:
        """The final norm (the official ``norm``; stored as ``norm3``, the backbone's last output norm)."""
        return getattr(self, f'norm{self.num_stages - 1}')

    # --- timm's classifier interface -----------------------------------------------------------

    def get_classifier(self) -> nn.Module:
        """The linear head."""
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace the head by a new one for ``num_classes`` (0: none) and optionally change the pooling."""
        if global_pool is not None:
            if global_pool not in _POOLS:
                raise ValueError(f'{type(self).__name__}: global_pool={global_pool!r}: choose one of {_POOLS}.')
            self.global_pool = global_pool
        self.num_classes = num_classes
        # the new head on the device and in the dtype of the rest of the model
        like = self.patch_embed.proj.weight
        self.head = (nn.Linear(self.num_features, num_classes, device=like.device, dtype=like.dtype)
                     if num_classes > 0 else nn.Identity())
        self.head.train(self.training)
        init_linear_and_norms(self.head)  # the official head initialisation

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Gradient checkpointing per block (the backbone's ``with_cp``)."""
        for layer in self.layers:
            layer.with_cp = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final-normed last stage map (B, C, H / 32, W / 32); after pruning, the last kept stage's map."""
        last = len(self.layers) - 1  # the final norm is an Identity once stages are pruned
        tokens, hw = self.forward_stages(x, (last, ))[last]
        return to_nchw(self.norm(tokens), hw)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the map of :meth:`forward_features` and apply the head (``pre_logits``: stop before it)."""
        if self.global_pool == 'avg':
            x = x.mean(dim=(2, 3))
        elif self.global_pool == 'max':
            x = x.amax(dim=(2, 3))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of images (B, 3, H, W), any H, W >= 32."""
        return self.forward_head(self.forward_features(x))

    # --- timm's feature interface --------------------------------------------------------------

    def forward_intermediates(self, x: torch.Tensor, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False
                              ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stage maps (NCHW, strides 4 .. 32) at any input size, as timm's ``features_only`` asks for them.

        Args:
            x: Images (B, C, H, W).
            indices: The last n stages if an int, all if None, else the stage indices.
            norm: Apply the final norm to the last stage's map (the others have no norm of their own).
            stop_early: Run no stage after the last one asked for (always so with ``intermediates_only``).
            output_fmt: Only ``'NCHW'``.
            intermediates_only: Return only the stage maps.

        Returns:
            The stage maps, or (final-normed last map, stage maps).
        """
        from timm.models._features import feature_take_indices
        if output_fmt != 'NCHW':
            raise ValueError(f"{type(self).__name__}.forward_intermediates: output_fmt={output_fmt!r}: only 'NCHW'.")
        take, max_index = feature_take_indices(len(self.layers), indices)
        last = self.num_stages - 1
        run_to = max_index if (stop_early or intermediates_only) else len(self.layers) - 1
        raw = self.forward_stages(x, sorted(set(take) | {run_to}))
        maps = [to_nchw(self.norm(raw[i][0]) if norm and i == last else raw[i][0], raw[i][1]) for i in take]
        if intermediates_only:
            return maps
        if run_to != last:
            raise ValueError(f'{type(self).__name__}: the final features need every stage; this model was pruned '
                             f'to {len(self.layers)} (use intermediates_only=True).')
        tokens, hw = raw[last]
        return to_nchw(self.norm(tokens), hw), maps

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the stages after the last of ``indices`` (and the head, the final norm when asked).

        Returns:
            The stage indices kept.
        """
        from timm.models._features import feature_take_indices
        take, max_index = feature_take_indices(len(self.layers), indices)
        if prune_norm or max_index < self.num_stages - 1:
            setattr(self, f'norm{self.num_stages - 1}', nn.Identity())
        self.layers = self.layers[:max_index + 1]
        self.layers[-1].downsample = None  # nothing comes after it: no unused parameters left in training
        if prune_head:
            self.reset_classifier(0, '')
        return take


class FocalClassifier(_ClassifierMixin, FocalTransformer):
    """The official Focal Transformer (v1) ImageNet classifier; ``use_conv_embed=True`` for the conv-stem models.

    Examples:
        >>> import torch
        >>> from mmfocal.models import FocalClassifier
        >>> FocalClassifier(arch='tiny', num_classes=10).eval()(torch.rand(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """


class FocalV2Classifier(_ClassifierMixin, FocalTransformerV2):
    """The official Focal-fast (v2) ImageNet classifier (conv stem, nearest-key attention)."""


def _official_tensors(checkpoint: Any) -> Dict[str, torch.Tensor]:
    """The tensors of an official classifier file, index buffers dropped, the final ``norm`` as ``norm3``."""
    state = dict(extract_backbone_state_dict(checkpoint))
    drop_derived_keys(state, keep_head=True)
    for p in ('weight', 'bias'):
        if f'norm.{p}' in state:
            state[f'norm3.{p}'] = state.pop(f'norm.{p}')
    return state


def official_classifier_state_dict(checkpoint: Any, model: nn.Module, adapt_stem_later: bool = False
                                   ) -> Dict[str, torch.Tensor]:
    """An official ImageNet checkpoint (or a saved classifier) as the classifier's state dict.

    Pure: finds the weights in any container (``{'model': ...}``, ``{'state_dict': ...}``, ``module.``),
    drops the index buffers the model rebuilds, renames the final ``norm`` to ``norm3``, resizes bias tables of
    another window size, and keeps the head.

    Args:
        checkpoint: The loaded file (or its state dict).
        model: The classifier the weights are for.
        adapt_stem_later: Leave the stem's convolution with the file's input channels, for a caller that adapts
            it to the model's (timm's ``in_chans``, after this filter).

    Returns:
        The state dict to load (strictly, when the head has the file's number of classes).

    Raises:
        CheckpointMismatchError: The weights are not Focal weights, or of the other family.
    """
    state = _official_tensors(checkpoint)
    check_version_family(state, model._focal_v2, 'the pretrained file')
    if not any(k.startswith('norm3.') for k in state):
        raise CheckpointMismatchError('the pretrained file has no final norm (norm.* or norm3.*): it is not a '
                                      'classifier checkpoint (a detection backbone has no head to load).')
    adapt_state_dict(state, model.state_dict(), input_conv='patch_embed.proj.weight' if adapt_stem_later else None)
    return state


def official_to_image_classifier(checkpoint: Any) -> Optional[Dict[str, torch.Tensor]]:
    """An official ImageNet file as the state dict of mmpretrain's ``ImageClassifier`` (None if it is not one).

    The backbone's tensors go under ``backbone.`` (the final ``norm`` as ``norm3``, index buffers dropped), the
    linear head under ``head.fc.`` (``LinearClsHead``).

    Args:
        checkpoint: The loaded file.

    Returns:
        The converted state dict, or None when the file has no official classifier layout (e.g. it was saved
        by mmpretrain already).
    """
    try:
        state = extract_backbone_state_dict(checkpoint)
    except CheckpointMismatchError:
        return None
    if any(k.startswith('backbone.') for k in state) or 'head.weight' not in state or 'norm.weight' not in state:
        return None
    return {('head.fc.' + k[len('head.'):] if k.startswith('head.') else 'backbone.' + k): v
            for k, v in _official_tensors(checkpoint).items()}
