"""Layers of the Focal Transformer: geometry of the attention, the attention layer, the blocks."""

from .focal_attention import FocalAttention
from .focal_block import FocalBlock, FocalMlp, FocalPatchEmbed, FocalStage
from .focal_geometry import (MASK_VALUE, expand_ring_offsets, expand_ring_valid_index, relative_position_index,
                             ring_duplicates, window_key_index, window_partition, window_reverse)

__all__ = ['FocalAttention', 'FocalBlock', 'FocalMlp', 'FocalPatchEmbed', 'FocalStage', 'MASK_VALUE',
           'expand_ring_offsets', 'expand_ring_valid_index', 'relative_position_index', 'ring_duplicates',
           'window_key_index', 'window_partition', 'window_reverse']
