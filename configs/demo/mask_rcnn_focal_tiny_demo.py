# The flagship config (Mask R-CNN + Focal-T) on the embedded demo data: data, image size, schedule and the
# proposal/RoI budgets differ. Trains from scratch (no ImageNet checkpoint needed) in about 5 minutes on 2 CPU
# cores (docs/tools.md, "The demo"). Data: python tools/misc/make_demo_data.py  (data/demo/coco)
_base_ = ['../mask_rcnn/focal_tiny_1x.py', './_demo_coco.py']

model = dict(
    # no drop path: a few hundred steps from scratch need every block
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)),
    # one to three objects per 128x128 image: small proposal/RoI budgets keep a CPU step (batch 4) under 2 s
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=100), rcnn=dict(sampler=dict(num=32))),
    # demo objects never overlap, so boxes overlapping by IoU 0.3 are duplicates (COCO's 0.5 keeps some of them)
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(nms=dict(iou_threshold=0.3))))
train_dataloader = {{_base_.demo_coco_masks.train_dataloader}}
val_dataloader = {{_base_.demo_coco_masks.val_dataloader}}
test_dataloader = {{_base_.demo_coco_masks.test_dataloader}}
val_evaluator = {{_base_.demo_coco_masks.val_evaluator}}
test_evaluator = {{_base_.demo_coco_masks.test_evaluator}}
train_cfg = {{_base_.demo_train_cfg}}
param_scheduler = {{_base_.demo_param_scheduler}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
default_hooks = {{_base_.demo_default_hooks}}
# seeded, so a demo run (and the tests that train it) does the same thing every time on one machine and stack
randomness = dict(seed=0)
