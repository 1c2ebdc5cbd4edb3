# RepPoints V2 + Focal-T (configs/reppoints_v2/focal_tiny_1x.py: the Swin/Focal BiFPN recipe) on the embedded demo
# data: only data, image size and schedule differ. Trains from scratch on a CPU in a few minutes; boxes only.
# Data: python tools/misc/make_demo_data.py  (data/demo/coco)
_base_ = ['../reppoints_v2/focal_tiny_1x.py', './_demo_coco.py']

model = dict(backbone=dict(init_cfg=None, drop_path_rate=0.0), bbox_head=dict(num_classes=3))
train_dataloader = {{_base_.demo_coco_boxes.train_dataloader}}
val_dataloader = {{_base_.demo_coco_boxes.val_dataloader}}
test_dataloader = {{_base_.demo_coco_boxes.test_dataloader}}
val_evaluator = {{_base_.demo_coco_boxes.val_evaluator}}
test_evaluator = {{_base_.demo_coco_boxes.test_evaluator}}
train_cfg = {{_base_.demo_train_cfg}}
param_scheduler = {{_base_.demo_param_scheduler}}
optim_wrapper = {{_base_.demo_optim_wrapper}}
default_hooks = {{_base_.demo_default_hooks}}
# seeded, so a demo run (and the tests that train it) does the same thing every time on one machine and stack
randomness = dict(seed=0)
