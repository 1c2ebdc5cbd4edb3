"""Checkpoint conversion for the Focal Transformer backbone.

Pure functions shared by the online loader (``FocalTransformer.init_weights`` and its
load-state-dict pre-hook) and the offline converter ``tools/model_converters/focal2mmfocal.py``.

Our parameter names are the official ones (``patch_embed.*``, ``layers.{i}.blocks.{j}.*``,
``layers.{i}.downsample.*``), so "conversion" means: find the backbone weights inside whatever
container they come in, drop what the backbone does not own (classifier head, index buffers that
we rebuild), and adapt the few tensors whose shape depends on configuration (bias tables).
"""

import os
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

from ...utils.checkpoint_compat import safe_torch_load

__all__ = [
    'checkpoint_tensors', 'extract_backbone_state_dict', 'drop_derived_keys', 'resize_bias_table', 'adapt_state_dict',
    'load_checkpoint_file', 'summarize_keys', 'CheckpointMismatchError', 'official_checkpoint_url',
    'OFFICIAL_CHECKPOINTS', 'FOCALNET_CHECKPOINTS', 'FOCALNET_RELEASE_BASE', 'pretrained_checkpoint',
    'check_checkpoint_exists', 'check_version_family'
]

# Buffers that the official model stores but that depend only on the configuration: we rebuild them.
DERIVED_KEY_PATTERNS = (
    re.compile(r'(^|\.)relative_position_index(_\d+)?$'),
    re.compile(r'(^|\.)valid_ind_rolled$'),
    re.compile(r'(^|\.)valid_ind_unfold_\d+$'),
    re.compile(r'(^|\.)attn_mask$'),
)
# Official v2 buffers, fixed to the 224 build size; never meaningful for dense prediction.
V2_KEY_PATTERNS = (
    re.compile(r'(^|\.)window_coords$'),
    re.compile(r'(^|\.)topk_cloest_(indice|coords)_\d+$'),
)


# The official ImageNet-1K releases (microsoft/Focal-Transformer README, "Image Classification").
OFFICIAL_CHECKPOINT_BASE = 'https://projects4jw.blob.core.windows.net/model/focal-transformer/imagenet1k/'
OFFICIAL_CHECKPOINTS = tuple(f'focal-{size}{stem}-is224-ws7.pth' for size in ('tiny', 'small', 'base')
                             for stem in ('', '-useconv')) + tuple(
                                 f'focalv2-{size}-useconv-is224-ws7.pth' for size in ('tiny', 'small', 'base'))


# The FocalNet classification releases (microsoft/FocalNet README; GitHub release assets of v1.0.0).
FOCALNET_RELEASE_BASE = 'https://github.com/microsoft/FocalNet/releases/download/v1.0.0/'
FOCALNET_CHECKPOINTS = tuple(f'focalnet_{s}_{r}.pth' for s in ('tiny', 'small', 'base') for r in ('srf', 'lrf')) + (
    'focalnet_large_lrf_384.pth', 'focalnet_large_lrf_384_fl4.pth', 'focalnet_xlarge_lrf_384.pth',
    'focalnet_xlarge_lrf_384_fl4.pth', 'focalnet_huge_lrf_224.pth', 'focalnet_huge_lrf_224_fl4.pth')


# Checkpoints the paper used but never released (configs name them so users know what to put there).
UNRELEASED_CHECKPOINTS = {
    'focal-large-useconv-is384-ws12-in22k.pth': 'the ImageNet-22K Focal-L weights were never released; put your own '
                                                '22K-pretrained Focal-L (arch="large", window 12) weights',
}


def official_checkpoint_url(path: str) -> Optional[str]:
    """The official download URL of a checkpoint kept under its release name, else ``None``.

    Args:
        path: Where the config expects the file (only its file name matters).

    Returns:
        The URL, or ``None`` for a file name that is not an official release.
    """
    name = os.path.basename(path)
    if name in FOCALNET_CHECKPOINTS:
        return FOCALNET_RELEASE_BASE + name
    return OFFICIAL_CHECKPOINT_BASE + name if name in OFFICIAL_CHECKPOINTS else None


def pretrained_checkpoint(init_cfg: Any) -> Optional[str]:
    """The checkpoint of the ``Pretrained`` entry of an ``init_cfg`` (a dict, a list of them or None), else None."""
    for cfg in init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]:
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            if not cfg.get('checkpoint'):
                raise ValueError("init_cfg type 'Pretrained' needs checkpoint=PATH.")
            return str(cfg['checkpoint'])
    return None


def check_checkpoint_exists(path: str, what: str = 'FocalTransformer init_cfg checkpoint') -> None:
    """Raise ``FileNotFoundError`` for a missing local checkpoint, naming its official URL when it has one.

    Args:
        path: Local path (URIs are not checked).
        what: How the message names the file.
    """
    if '://' in path or os.path.isfile(os.path.expanduser(path)):
        return
    url = official_checkpoint_url(path)
    if url:
        where = f'download it from {url}'
    elif os.path.basename(path) in UNRELEASED_CHECKPOINTS:
        where = UNRELEASED_CHECKPOINTS[os.path.basename(path)]
    else:
        where = 'download the official ImageNet checkpoint (docs/checkpoints.md)'
    raise FileNotFoundError(f'{what} not found: {path!r}: {where} into that path, or set init_cfg=None to train '
                            'from scratch.')


class CheckpointMismatchError(ValueError):
    """A checkpoint tensor cannot be used by this backbone configuration."""


def _fetch_remote(uri: str) -> Any:
    """A local path (http(s), cached in torch hub's directory) or an in-memory file (other backends)."""
    if uri.startswith(('http://', 'https://')):
        cached = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(uri.split('?')[0]))
        if not os.path.isfile(cached):
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            torch.hub.download_url_to_file(uri, cached)
        return cached
    import io

    from mmengine.fileio import get
    return io.BytesIO(get(uri))


def load_checkpoint_file(path: str, map_location: str = 'cpu', mmap: bool = False) -> Any:
    """Load a checkpoint file safely (``weights_only=True``) with a clear error on failure.

    Args:
        path: Local path, http(s) URL (cached in torch hub's directory) or a URI mmengine's fileio reads.
        map_location: Passed to ``torch.load``.
        mmap: Memory-map a local file instead of reading it (cheap peeks at shapes).

    Returns:
        The object stored in the checkpoint.
    """
    if '://' in path:
        # Fetched here rather than by mmengine's CheckpointLoader, whose torch.load runs pickled code on
        # torch < 2.6.
        return safe_torch_load(_fetch_remote(path), map_location=map_location)
    check_checkpoint_exists(path, 'Focal Transformer checkpoint')
    try:
        return safe_torch_load(path, map_location=map_location, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - re-raised with the fix the user needs
        if mmap and 'mmap' in str(exc):
            return load_checkpoint_file(path, map_location, mmap=False)
        raise RuntimeError(
            f'Could not load {path!r} safely (weights_only=True): {exc}. If this is an official '
            'training checkpoint that pickles its yacs config, convert it once from a trusted copy with '
            '`python tools/model_converters/focal2mmfocal.py SRC DST --trust-pickle` and use DST.') from exc


def checkpoint_tensors(checkpoint: Any) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors of a checkpoint: inside ``state_dict`` / ``model`` / ``module`` when it has one, ``module.``
    (DDP) stripped.

    Args:
        checkpoint: The object returned by ``torch.load``.

    Raises:
        CheckpointMismatchError: Not a dict, or no tensors in it.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(f'Expected a checkpoint dict, got {type(checkpoint).__name__}.')
    state = checkpoint
    for container in ('state_dict', 'model', 'module'):
        if container in state and isinstance(state[container], Mapping):
            state = state[container]
            break
    tensors = OrderedDict((k, v) for k, v in state.items() if isinstance(v, torch.Tensor))
    if not tensors:
        raise CheckpointMismatchError(f'The checkpoint holds no tensors (top-level keys: {sorted(checkpoint)[:8]}).')
    if all(k.startswith('module.') for k in tensors):
        tensors = OrderedDict((k[len('module.'):], v) for k, v in tensors.items())
    return tensors


def extract_backbone_state_dict(checkpoint: Any) -> 'OrderedDict[str, torch.Tensor]':
    """Find the Focal Transformer weights in any supported checkpoint layout.

    Supported: a bare official state dict, ``{'model': ...}`` (official training checkpoints),
    ``{'state_dict': ...}`` (mmengine), keys prefixed with ``module.`` (DDP) and/or
    ``backbone.`` (a whole mmdet/mmseg model, whose other parts are left out).

    Args:
        checkpoint: The object returned by ``torch.load``.

    Returns:
        Backbone tensors under their official names, in the original order.
    """
    tensors = checkpoint_tensors(checkpoint)
    if any(k.startswith('backbone.') for k in tensors):
        tensors = OrderedDict(
            (k[len('backbone.'):], v) for k, v in tensors.items() if k.startswith('backbone.'))
    if not any(k.startswith(('patch_embed.', 'layers.')) for k in tensors):
        raise CheckpointMismatchError(
            'No Focal Transformer weights in this checkpoint: expected keys such as '
            f"'patch_embed.proj.weight' or 'layers.0.blocks.0.attn.qkv.weight', found e.g. {list(tensors)[:4]}.")
    return tensors


def drop_derived_keys(state_dict: Dict[str, torch.Tensor], prefix: str = '', keep_head: bool = False) -> List[str]:
    """Remove classifier-head, index-buffer and v2-only keys from ``state_dict`` in place.

    Args:
        state_dict: A state dict (modified in place).
        prefix: Only keys under this prefix are considered.
        keep_head: Keep ``head.*`` (for a model that has the classifier head).

    Returns:
        The removed keys.
    """
    removed = []
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        local = key[len(prefix):]
        if ((local.startswith('head.') and not keep_head) or any(p.search(local) for p in DERIVED_KEY_PATTERNS)
                or any(p.search(local) for p in V2_KEY_PATTERNS)):
            del state_dict[key]
            removed.append(key)
    return removed


def resize_bias_table(table: torch.Tensor, target_shape: torch.Size, key: str) -> torch.Tensor:
    """Interpolate a square relative-position bias table to a new side length.

    ``relative_position_bias_table`` is stored (L*L, heads) and
    ``relative_position_bias_table_to_windows.k`` is stored (heads, L*L); both are resized
    bilinearly on their L×L grid, as the paper does for its larger detection focal windows.

    Args:
        table: The checkpoint tensor.
        target_shape: The shape the model expects.
        key: The parameter name, used to pick the layout and in error messages.

    Returns:
        The resized table, in the checkpoint's dtype.
    """
    heads_first = 'to_windows' in key
    src = table if heads_first else table.t()
    dst_heads, dst_len = (target_shape[0], target_shape[1]) if heads_first else (target_shape[1], target_shape[0])
    if src.shape[0] != dst_heads:
        raise CheckpointMismatchError(
            f'{key}: checkpoint has {src.shape[0]} heads, the model has {dst_heads}; '
            'the checkpoint is for a different model width (check arch/num_heads).')
    src_side, dst_side = int(round(src.shape[1] ** 0.5)), int(round(dst_len ** 0.5))
    if src_side ** 2 != src.shape[1] or dst_side ** 2 != dst_len:
        raise CheckpointMismatchError(
            f'{key}: tables {tuple(table.shape)} -> {tuple(target_shape)} are not square grids.')
    grid = src.float().reshape(1, dst_heads, src_side, src_side)
    grid = F.interpolate(grid, size=(dst_side, dst_side), mode='bilinear', align_corners=False)
    out = grid.reshape(dst_heads, dst_len).to(table.dtype)
    return out if heads_first else out.t().contiguous()


RESIZABLE_TABLE = re.compile(r'relative_position_bias_table(_to_windows\.\d+)?$')


def adapt_state_dict(state_dict: Dict[str, torch.Tensor], model_state: Mapping[str, torch.Tensor],
                     prefix: str = '', input_conv: Optional[str] = None) -> Tuple[List[str], List[str]]:
    """Make checkpoint tensors fit the model in place: drop derived keys, resize bias tables.

    Any other shape difference is an error that names the tensor and both shapes.

    Args:
        state_dict: The incoming state dict (modified in place).
        model_state: The model's own state dict (names without ``prefix``).
        prefix: Prefix of the backbone inside ``state_dict`` (e.g. ``'backbone.'``).
        input_conv: A convolution weight whose input channels may differ from the model's and are left as they
            are: the caller adapts them afterwards (timm's ``in_chans``, after its pretrained filter).

    Returns:
        (removed keys, human-readable notes about resized tables).
    """
    # the backbone has no classifier head; the ImageNet classifiers built on it do
    removed = drop_derived_keys(state_dict, prefix, keep_head=any(k.startswith('head.') for k in model_state))
    notes = []
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        local = key[len(prefix):]
        if local not in model_state or local.startswith('head.'):  # another class count is the loader's business
            continue
        src, want = state_dict[key], model_state[local]
        if src.shape == want.shape:
            continue
        if local == input_conv and src.dim() == want.dim() == 4 and src.shape[0] == want.shape[0] \
                and src.shape[2:] == want.shape[2:]:
            continue
        if RESIZABLE_TABLE.search(local):
            state_dict[key] = resize_bias_table(src, want.shape, local)
            notes.append(f'{local} {tuple(src.shape)}->{tuple(want.shape)}')
        elif local.endswith('relative_position_bias_table_to_neighbors'):
            raise CheckpointMismatchError(
                f'{local}: checkpoint shape {tuple(src.shape)}, model {tuple(want.shape)}. The expand-ring '
                'table is a free bias per (query, key) pair and cannot be resized: use the checkpoint\'s '
                'window_size and expand_sizes.')
        else:
            raise CheckpointMismatchError(
                f'{local}: checkpoint shape {tuple(src.shape)} does not match the model {tuple(want.shape)}; '
                'the checkpoint is for a different architecture (arch/embed_dims/num_heads/use_conv_embed).')
    return removed, notes


def check_version_family(state_dict: Mapping[str, torch.Tensor], v2: bool, source: str, prefix: str = '') -> None:
    """Refuse v1 weights for a Focal-fast (v2) model and the other way round, with what to use instead.

    The two families share every name but the attention's position bias: v1 has bias tables
    (``relative_position_bias_table*``), v2 a coordinate MLP (``coord2rpb_all``).

    Args:
        state_dict: Incoming tensors.
        v2: Whether the model is a ``FocalTransformerV2``.
        source: What the tensors come from (for the message).
        prefix: Only keys under this prefix are looked at.
    """
    keys = [k for k in state_dict if k.startswith(prefix)]
    has_v1 = any('relative_position_bias_table' in k for k in keys)
    has_v2 = any('coord2rpb_all' in k for k in keys)
    if v2 and has_v1 and not has_v2:
        raise CheckpointMismatchError(
            f'{source} holds Focal Transformer v1 weights (relative_position_bias_table*), but the model is '
            "FocalTransformerV2 (Focal-fast): use type='FocalTransformer' for them, or a focalv2-* checkpoint.")
    if not v2 and has_v2 and not has_v1:
        raise CheckpointMismatchError(
            f'{source} holds Focal-fast (v2) weights (coord2rpb_all), but the model is FocalTransformer (v1): '
            "use type='FocalTransformerV2' for them, or a focal-* (v1) checkpoint.")


def summarize_keys(keys: List[str]) -> str:
    """Group parameter names by module for a one-line report (``norm0.{weight,bias}``).

    Args:
        keys: Full parameter names.

    Returns:
        A compact comma-separated description, ``'none'`` when empty.
    """
    if not keys:
        return 'none'
    groups: 'OrderedDict[str, List[str]]' = OrderedDict()
    for key in keys:
        module, _, leaf = key.rpartition('.')
        groups.setdefault(module, []).append(leaf)
    parts = [f'{m}.{{{",".join(leaves)}}}' if len(leaves) > 1 else f'{m}.{leaves[0]}' for m, leaves in groups.items()]
    return ', '.join(parts)


def official_to_mmfocal(checkpoint: Any, model_state: Optional[Mapping[str, torch.Tensor]] = None,
                        ) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Convert an official (or already converted) checkpoint to the backbone's state dict.

    Args:
        checkpoint: Object returned by ``torch.load``.
        model_state: The target model's state dict; when given, the official final ``norm.*``
            initialises ``norm3.*`` (if the model has it) and bias tables are resized.

    Returns:
        (converted state dict, notes on what was changed).
    """
    state = extract_backbone_state_dict(checkpoint)
    removed = drop_derived_keys(state)
    notes = [f'dropped {len(removed)} head/index keys'] if removed else []
    if model_state is not None:
        if 'norm.weight' in state and 'norm3.weight' in model_state and 'norm3.weight' not in state:
            state['norm3.weight'] = state.pop('norm.weight')
            state['norm3.bias'] = state.pop('norm.bias')
            notes.append('final norm -> norm3')
        _, resized = adapt_state_dict(state, model_state)
        notes += [f'resized {r}' for r in resized]
    return state, notes
