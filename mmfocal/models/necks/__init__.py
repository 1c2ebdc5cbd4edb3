"""Necks provided by mmfocal (registered in mmdet's ``MODELS``)."""

from .rpd_bifpn import RPDBiFPN

__all__ = ['RPDBiFPN']
