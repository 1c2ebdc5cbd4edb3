"""mmfocal: the focal family of vision backbones (Focal Transformer, Focal-fast, FocalNet) in plain PyTorch, with
faces in MMDetection 3.x, MMSegmentation 1.x, mmpretrain and timm.

``import mmfocal`` needs torch alone and imports no OpenMMLab package and no timm. Each library gets mmfocal's
classes when it is imported itself, before or after mmfocal (:mod:`mmfocal.registry`): ``FocalTransformer``,
``FocalTransformerV2`` and ``FocalNet`` in the mmdet, mmseg and mmpretrain ``MODELS`` registries
(``custom_imports=dict(imports=['mmfocal'])`` in a config), RepPoints V2's head, neck, losses and assigners in
mmdet's, the nine released Focal Transformer ImageNet models in timm (``timm.list_models(
'focal*_patch4_window7_224')``; timm has FocalNet itself), and the objects of mmengine checkpoints in torch's
``weights_only`` allow-list.
"""

from .models import FocalNet, FocalTransformer, FocalTransformerV2
from .registry import install_import_hooks
from .version import __version__

install_import_hooks()

__all__ = ['__version__', 'FocalNet', 'FocalTransformer', 'FocalTransformerV2']
