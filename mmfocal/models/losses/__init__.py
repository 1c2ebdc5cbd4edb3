"""Losses provided by mmfocal (registered in mmdet's ``MODELS``)."""

from .reppoints_v2_losses import LegacyGIoULoss, SEPFocalLoss, legacy_giou_loss, separate_sigmoid_focal_loss

__all__ = ['LegacyGIoULoss', 'SEPFocalLoss', 'legacy_giou_loss', 'separate_sigmoid_focal_loss']
