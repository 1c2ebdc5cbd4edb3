"""Target assigners provided by mmfocal (registered in mmdet's ``TASK_UTILS``)."""

from .corner_heatmap_assigner import CornerHeatmapAssigner, gaussian_radius_tensor
from .rpd_assigners import ATSSAssignerV2, PointAssignerV2

__all__ = ['ATSSAssignerV2', 'CornerHeatmapAssigner', 'PointAssignerV2', 'gaussian_radius_tensor']
