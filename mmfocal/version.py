"""Version of the mmfocal package."""

__version__ = '0.1.0'
