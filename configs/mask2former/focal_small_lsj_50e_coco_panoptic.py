# Mask2Former + Focal-S, COCO panoptic segmentation, LSJ 50 epochs:
# configs/mask2former/focal_tiny_lsj_50e_coco_panoptic.py with Focal-S, as mmdet's Swin-S recipe is its Swin-T one with
# Swin-S. Beyond the paper: not trained here.
_base_ = './focal_tiny_lsj_50e_coco_panoptic.py'
model = dict(backbone=dict(arch='small', init_cfg=dict(checkpoint='checkpoints/focal-small-is224-ws7.pth')))
