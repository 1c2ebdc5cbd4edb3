"""Layers of the Focal Transformer: geometry of the attention, the attention layer, the blocks."""

from .focal_attention import FocalAttention
from .focal_block import FocalBlock, FocalMlp, FocalPatchEmbed, FocalStage, build_pool_layers, pool_windows
from .focal_geometry import (MASK_VALUE, expand_ring_offsets, expand_ring_valid_index, relative_position_index,
                             ring_duplicates, window_key_index, window_partition, window_reverse)
from .focal_v2 import FocalV2Attention, FocalV2Block, focal_v2_geometry, nearest_keys

__all__ = ['FocalAttention', 'FocalBlock', 'FocalMlp', 'FocalPatchEmbed', 'FocalStage', 'FocalV2Attention',
           'FocalV2Block', 'MASK_VALUE', 'build_pool_layers', 'focal_v2_geometry', 'nearest_keys', 'pool_windows',
           'expand_ring_offsets', 'expand_ring_valid_index', 'relative_position_index', 'ring_duplicates',
           'window_key_index', 'window_partition', 'window_reverse']
