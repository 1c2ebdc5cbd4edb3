"""Layers of both Focal Transformer families (which keys a window attends to, the attention layers, the blocks)
and of FocalNet (the focal modulation and its block)."""

from .focal_attention import FocalAttention, FocalV2Attention
from .focal_block import (FocalBlock, FocalMlp, FocalPatchEmbed, FocalStage, FocalV2Block, build_pool_layers,
                          init_linear_and_norms, pool_windows)
from .focal_modulation import FocalModulation, FocalNetBlock, FocalNetEmbed, FocalNetStage, focal_kernel_sizes
from .focal_geometry import (FAST_MASK_VALUE, MASK_VALUE, FocalV2Geometry, expand_ring_offsets,
                             expand_ring_valid_index, focal_v1_key_index, focal_v2_bias_rows, focal_v2_geometry,
                             nearest_keys, relative_position_index, ring_duplicates, window_key_index,
                             window_partition, window_reverse)

__all__ = ['FocalAttention', 'FocalBlock', 'FocalMlp', 'FocalModulation', 'FocalNetBlock', 'FocalNetEmbed',
           'FocalNetStage', 'FocalPatchEmbed', 'FocalStage', 'FocalV2Attention', 'focal_kernel_sizes',
           'FocalV2Block', 'FocalV2Geometry', 'FAST_MASK_VALUE', 'MASK_VALUE', 'build_pool_layers',
           'expand_ring_offsets', 'expand_ring_valid_index', 'focal_v1_key_index', 'focal_v2_bias_rows',
           'focal_v2_geometry', 'init_linear_and_norms', 'nearest_keys', 'pool_windows', 'relative_position_index',
           'ring_duplicates', 'window_key_index', 'window_partition', 'window_reverse']
