"""Models provided by mmfocal."""

from .backbones import FocalTransformer, FocalTransformerV2

__all__ = ['FocalTransformer', 'FocalTransformerV2']
