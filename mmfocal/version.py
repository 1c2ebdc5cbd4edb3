"""Version of the mmfocal package."""

__version__ = '0.2.0'
