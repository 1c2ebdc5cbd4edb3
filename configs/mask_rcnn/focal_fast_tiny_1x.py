# Mask R-CNN + Focal-fast-T (v2), 1x (12 epochs), single scale 1333x800: the Focal-T 1x recipe with the faster
# v2 backbone and its released ImageNet-1K checkpoint. The paper has no Focal-fast results: no target numbers.
_base_ = './focal_tiny_1x.py'
model = dict(backbone={{_base_.focal_fast_tiny_det_backbone}})
