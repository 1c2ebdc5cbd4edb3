"""mmfocal: Focal Transformer backbones for MMDetection 3.x and MMSegmentation 1.x.

Importing the package (directly or through ``custom_imports=dict(imports=['mmfocal'])``)
registers its models in both the mmdet and the mmseg ``MODELS`` registries and lets torch's
``weights_only`` loader read mmengine checkpoints.
"""

from .utils.checkpoint_compat import register_safe_globals
from .version import __version__

register_safe_globals()

from .models import FocalTransformer  # noqa: E402
from .registry import register_models  # noqa: E402

register_models([FocalTransformer])

__all__ = ['__version__', 'FocalTransformer']
