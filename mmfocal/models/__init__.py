"""Models provided by mmfocal."""

from .backbones import FocalNet, FocalTransformer, FocalTransformerV2
from .classifiers import FocalClassifier, FocalV2Classifier

__all__ = ['FocalNet', 'FocalTransformer', 'FocalTransformerV2', 'FocalClassifier', 'FocalV2Classifier']
