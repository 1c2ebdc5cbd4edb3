# The flagship config (Mask R-CNN + Focal-T) on the embedded demo data: only data, image size and
# schedule differ. Trains from scratch (no ImageNet checkpoint needed) for a few minutes on a CPU.
# Data: python tools/misc/make_demo_data.py  (data/demo/coco, 3 classes, 256x256 images)
_base_ = ['../mask_rcnn/focal_tiny_1x.py', './_demo_coco.py']

model = dict(
    backbone=dict(init_cfg=None, drop_path_rate=0.1),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    # a few objects per 256x256 image: smaller proposal/RoI budgets keep a CPU step around 3 s
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
train_dataloader = {{_base_.demo_coco_masks.train_dataloader}}
val_dataloader = {{_base_.demo_coco_masks.val_dataloader}}
test_dataloader = {{_base_.demo_coco_masks.test_dataloader}}
val_evaluator = {{_base_.demo_coco_masks.val_evaluator}}
test_evaluator = {{_base_.demo_coco_masks.test_evaluator}}
train_cfg = {{_base_.demo_train_cfg}}
param_scheduler = {{_base_.demo_param_scheduler}}
optim_wrapper = dict(optimizer=dict(lr=4e-4))
default_hooks = {{_base_.demo_default_hooks}}
# seeded, so a demo run (and the tests that train it) does the same thing every time on one machine and stack
randomness = dict(seed=0)
