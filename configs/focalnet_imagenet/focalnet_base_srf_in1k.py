# FocalNet-B (srf) on ImageNet-1K: the official released classifier, evaluated the official way (short
# side 256, bicubic, centre crop 224, ImageNet mean / std: mmpretrain's Swin evaluation pipeline is exactly that).
#   python tools/test.py configs/focalnet_imagenet/focalnet_base_srf_in1k.py checkpoints/focalnet_base_srf.pth
# takes the official file as it is (tools/test.py converts it once for ImageClassifier) and prints the top-1.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py', 'mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='FocalNet', arch='base_srf', out_indices=(3, ), drop_path_rate=0.5,
        # for fine-tuning (training applies it; testing loads the checkpoint given to tools/test.py)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focalnet_base_srf.pth')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=1024, loss=dict(type='CrossEntropyLoss'),
              topk=(1, 5)))
# evaluation only (tools/test.py): no training or validation loop
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict()
