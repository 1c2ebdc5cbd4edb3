# Mask R-CNN + Focal-fast-T (v2), 3x (36 epochs), multi-scale [480, 800] with the Swin recipe's crop branch:
# the Focal-T 3x recipe with the v2 backbone. The paper has no Focal-fast results: no target numbers.
_base_ = './focal_tiny_3x.py'
model = dict(backbone={{_base_.focal_fast_tiny_det_backbone}})
