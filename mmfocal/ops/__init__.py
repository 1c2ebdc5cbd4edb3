"""Kernels of mmfocal: the fused focal attention and the settings that choose and tune it."""

from .focal_attention_core import (AttentionGeometry, FocalAttentionCore, ScratchBuffers, accumulate_dtype,
                                   fused_attention, pack_qkv, scratch)
from .settings import AttentionSettings, attention_settings, flash_cpu_op, get_attention_settings

__all__ = ['AttentionGeometry', 'AttentionSettings', 'FocalAttentionCore', 'ScratchBuffers', 'accumulate_dtype',
           'attention_settings',
           'flash_cpu_op', 'fused_attention', 'get_attention_settings', 'pack_qkv', 'scratch']
