"""Backbones provided by mmfocal."""

from .focal_transformer import FocalTransformer

__all__ = ['FocalTransformer']
