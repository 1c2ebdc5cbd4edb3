"""mmfocal: Focal Transformer backbones for MMDetection 3.x and MMSegmentation 1.x.

Importing the package (directly or through ``custom_imports=dict(imports=['mmfocal'])``)
registers its backbones (``FocalTransformer``, the Focal-fast ``FocalTransformerV2``) in both the mmdet and
the mmseg ``MODELS`` registries (RepPoints V2's head, BiFPN neck, losses and assigners in mmdet's), the nine
released ImageNet models in timm (``timm.list_models('focal*_patch4_window7_224')``) and lets torch's
``weights_only`` loader read mmengine checkpoints.
"""

import importlib.util
import warnings

from .utils.checkpoint_compat import register_safe_globals
from .version import __version__

register_safe_globals()

from .models import FocalTransformer, FocalTransformerV2  # noqa: E402
from .registry import MISSING_SCOPES, register_models  # noqa: E402

register_models([FocalTransformer, FocalTransformerV2])

if importlib.util.find_spec('timm') is not None:  # the released ImageNet models as timm models
    from .models import timm_models  # noqa: F401,E402

try:  # RepPoints V2 is built on mmdet; without mmdet only the backbone is available
    from .models.dense_heads import RepPointsV2Head
    from .models.losses import LegacyGIoULoss, SEPFocalLoss
    from .models.necks import RPDBiFPN
    from .models.task_modules import ATSSAssignerV2, CornerHeatmapAssigner, PointAssignerV2
except ImportError as exc:
    MISSING_SCOPES.setdefault('mmdet', str(exc))
    if importlib.util.find_spec('mmdet') is not None:  # mmdet is there, so something it needs is broken
        warnings.warn(f'mmfocal: RepPointsV2Head is unavailable because an import failed ({exc}); it needs mmdet '
                      '3.3 and mmcv 2.1 with ops (see docs/install.md).', stacklevel=2)
else:
    register_models([RepPointsV2Head, RPDBiFPN, SEPFocalLoss, LegacyGIoULoss], scopes=('mmdet', ))
    register_models([CornerHeatmapAssigner, PointAssignerV2, ATSSAssignerV2], scopes=('mmdet', ),
                    registry='TASK_UTILS')

__all__ = ['__version__', 'FocalTransformer', 'FocalTransformerV2']
