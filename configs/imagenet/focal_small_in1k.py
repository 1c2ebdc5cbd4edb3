# Focal-S on ImageNet-1K: the official released classifier, evaluated the official way (short side 256,
# bicubic, centre crop 224, ImageNet mean / std: mmpretrain's Swin evaluation pipeline is exactly that).
#   python tools/test.py configs/imagenet/focal_small_in1k.py checkpoints/focal-small-is224-ws7.pth
# takes the official file as it is (tools/test.py converts it once for ImageClassifier) and prints top-1 / top-5.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py', 'mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='FocalTransformer', arch='small', use_conv_embed=False, out_indices=(3, ), drop_path_rate=0.3,
        # for fine-tuning (training applies it; testing loads the checkpoint given to tools/test.py)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/focal-small-is224-ws7.pth')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=768, loss=dict(type='CrossEntropyLoss'),
              topk=(1, 5)))
# evaluation only (tools/test.py): no training or validation loop; the fine-tuning config adds them
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict()
