"""Models provided by mmfocal."""

from .backbones import FocalTransformer

__all__ = ['FocalTransformer']
