"""All attention machinery of mmfocal: both families' kernels and autograd functions, the dispatcher that picks
one per call, the piece policy and reused buffers of the CPU loops, the gather-table cache, the settings, and
the blocks' MLP that runs in the same pieces."""

from .dispatch import (AttentionPath, cached_geometry, choose_path, clear_geometry_cache, compiling, exporting,
                       fc_window_pool, pad_bottom_right, tables_before_trace, token_conv, token_linear)
from .focal_v1 import (AttentionGeometry, FocalAttentionCore, accumulate_dtype, explicit_attention, focal_v1_attention,
                       fused_attention, mask_channel, pack_qkv)
from .focal_v2 import (BiasLookup, FocalV2Core, bias_rows, focal_v2_attention, focal_v2_inference,
                       focal_v2_training, lookup_bias)
from .mlp import MlpCore, fused_mlp_applies, fused_mlp_residual_, mlp_training, mlp_training_applies
from .scratch import ScratchBuffers, gather_rows, pieces, scatter_add_rows, scratch
from .settings import AttentionSettings, attention_settings, flash_cpu_op, get_attention_settings

__all__ = ['AttentionGeometry', 'AttentionPath', 'AttentionSettings', 'BiasLookup', 'FocalAttentionCore',
           'FocalV2Core', 'MlpCore', 'ScratchBuffers', 'accumulate_dtype', 'attention_settings', 'bias_rows',
           'cached_geometry', 'choose_path', 'clear_geometry_cache', 'compiling', 'exporting', 'explicit_attention',
           'fc_window_pool', 'flash_cpu_op', 'focal_v1_attention', 'focal_v2_attention', 'focal_v2_inference',
           'focal_v2_training', 'fused_attention', 'fused_mlp_applies', 'fused_mlp_residual_', 'gather_rows',
           'get_attention_settings', 'lookup_bias', 'mask_channel', 'mlp_training', 'mlp_training_applies', 'pack_qkv',
           'pad_bottom_right', 'pieces', 'scatter_add_rows', 'scratch', 'tables_before_trace', 'token_conv',
           'token_linear']
