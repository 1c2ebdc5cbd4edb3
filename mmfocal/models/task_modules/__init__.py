"""Target assigners provided by mmfocal (registered in mmdet's ``TASK_UTILS``)."""

from .corner_heatmap_assigner import CornerHeatmapAssigner, gaussian_radius_tensor

__all__ = ['CornerHeatmapAssigner', 'gaussian_radius_tensor']
