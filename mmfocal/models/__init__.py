"""Models provided by mmfocal."""

from .backbones import FocalTransformer, FocalTransformerV2
from .classifiers import FocalClassifier, FocalV2Classifier

__all__ = ['FocalTransformer', 'FocalTransformerV2', 'FocalClassifier', 'FocalV2Classifier']
