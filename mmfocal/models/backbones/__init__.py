"""Backbones provided by mmfocal."""

from .focal_transformer import FocalTransformer
from .focal_transformer_v2 import FocalTransformerV2

__all__ = ['FocalTransformer', 'FocalTransformerV2']
