"""Detection heads provided by mmfocal (need mmdet)."""

from .corner_pool import CornerPoolBlock, directional_max_pool
from .reppoints_v2_head import RepPointsV2Head

__all__ = ['CornerPoolBlock', 'RepPointsV2Head', 'directional_max_pool']
