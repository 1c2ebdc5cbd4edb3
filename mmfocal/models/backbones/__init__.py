"""Backbones provided by mmfocal: the two Focal Transformer families on one shared base, and FocalNet."""

from .focal_base import FocalBackbone
from .focal_transformer import FocalTransformer
from .focal_transformer_v2 import FocalTransformerV2
from .focalnet import FocalNet

__all__ = ['FocalBackbone', 'FocalNet', 'FocalTransformer', 'FocalTransformerV2']
