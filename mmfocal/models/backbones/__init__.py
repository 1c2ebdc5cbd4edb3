"""Backbones provided by mmfocal: the two Focal Transformer families, on one shared base."""

from .focal_base import FocalBackbone
from .focal_transformer import FocalTransformer
from .focal_transformer_v2 import FocalTransformerV2

__all__ = ['FocalBackbone', 'FocalTransformer', 'FocalTransformerV2']
