"""Every shipped config parses, builds on CPU and predicts; parameter counts match the paper."""

import glob
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmfocal.analysis import PAPER_TABLE, complexity, paper_key
from mmfocal.apis import build_model, syncbn_to_bn

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '[!_]*', 'focal_*.py')))
REQUIRED = [f'configs/{m}/focal_{s}_{t}.py' for m in ('retinanet', 'mask_rcnn') for s in ('tiny', 'small', 'base')
            for t in ('1x', '3x')] + \
    [f'configs/{m}/focal_tiny_{t}.py' for m in ('cascade', 'atss', 'sparse_rcnn', 'reppoints_v2')
     for t in ('1x', '3x')] + \
    [f'configs/upernet/focal_{s}_160k_ade20k.py' for s in ('tiny', 'small', 'base')]


def predict_once(model: torch.nn.Module, scope: str, h: int = 96, w: int = 128) -> list:
    """Run the real test path (data preprocessor + predict) on one random image."""
    image = torch.from_numpy(np.random.RandomState(0).randint(0, 255, (3, h, w), dtype=np.uint8))
    meta = dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.), img_id=0)
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        sample = DetDataSample(metainfo=meta)
    else:
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=dict(meta, pad_shape=(h, w)))
    model.eval()
    with torch.no_grad():
        return model.test_step(dict(inputs=[image], data_samples=[sample]))


def test_every_experiment_has_a_config() -> None:
    missing = [c for c in REQUIRED if c not in CONFIGS]
    assert not missing, missing


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_predicts(config: str) -> None:
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.custom_imports == dict(imports=['mmfocal'], allow_failed_imports=False)
    assert cfg.model.backbone.type == 'FocalTransformer'
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'  # points at the ImageNet checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = build_model(cfg, pretrained=False)
        model.init_weights()
    results = predict_once(model, cfg.default_scope)
    assert len(results) == 1
    if cfg.default_scope == 'mmdet':
        inst = results[0].pred_instances
        assert inst.bboxes.shape[1] == 4 and len(inst.scores) <= 300
    else:
        assert results[0].pred_sem_seg.data.shape[-2:] == (96, 128)


# Gaps we could not close without inventing architecture; each is explained in the README.
KNOWN_PARAM_GAPS = {
    'reppoints_v2/focal_tiny': 'the original RepPointsV2 GIoU head + GN FPN on Focal-T gives 40.13 M, the paper '
                               'says 45.4 M (README, "Parameter counts")',
}


@pytest.mark.parametrize('key', [
    pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=KNOWN_PARAM_GAPS[k])) if k in KNOWN_PARAM_GAPS else k
    for k in sorted({paper_key(c) for c in CONFIGS})
])
def test_parameter_count_within_one_percent_of_the_paper(key: str) -> None:
    config = next(c for c in CONFIGS if paper_key(c) == key)
    params = complexity(Config.fromfile(osp.join(REPO, config)), flops=False)['params'] / 1e6
    paper = PAPER_TABLE[key][0]
    assert abs(params / paper - 1) <= 0.01, f'{key}: {params:.2f} M vs paper {paper} M'


def test_schedules_follow_the_paper() -> None:
    one = Config.fromfile(osp.join(REPO, 'configs/mask_rcnn/focal_tiny_1x.py'))
    three = Config.fromfile(osp.join(REPO, 'configs/mask_rcnn/focal_tiny_3x.py'))
    assert one.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert one.train_cfg.max_epochs == 12 and one.param_scheduler[1].milestones == [8, 11]
    assert three.train_cfg.max_epochs == 36 and three.param_scheduler[1].milestones == [27, 33]
    assert three.train_dataloader.dataset.pipeline[3].type == 'RandomChoice'
    retina = Config.fromfile(osp.join(REPO, 'configs/retinanet/focal_tiny_1x.py'))
    assert 'momentum' not in retina.optim_wrapper.optimizer  # SGD template fully replaced
    base = Config.fromfile(osp.join(REPO, 'configs/retinanet/focal_base_3x.py'))
    assert base.model.backbone.arch == 'base' and base.model.backbone.drop_path_rate == 0.3
    assert base.model.neck.in_channels == [256, 512, 1024]
    seg = Config.fromfile(osp.join(REPO, 'configs/upernet/focal_tiny_160k_ade20k.py'))
    assert seg.optim_wrapper.optimizer.lr == 6e-5 and seg.train_cfg.max_iters == 160000


def test_syncbn_becomes_bn_with_a_warning_outside_distributed_runs() -> None:
    cfg = Config.fromfile(osp.join(REPO, 'configs/upernet/focal_tiny_160k_ade20k.py'))
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    with pytest.warns(UserWarning, match='SyncBN layer config'):
        assert syncbn_to_bn(cfg, distributed=False) >= 2
    assert cfg.model.decode_head.norm_cfg.type == 'BN'
    cfg = Config.fromfile(osp.join(REPO, 'configs/cascade/focal_tiny_1x.py'))
    assert syncbn_to_bn(cfg, distributed=True) == 0 and cfg.model.roi_head.bbox_head[0].norm_cfg.type == 'SyncBN'


def test_external_config_with_custom_imports_only(tmp_path) -> None:
    """A user's own config: an mmdet base, custom_imports=['mmfocal'], type='FocalTransformer'."""
    path = tmp_path / 'my_fcos.py'
    path.write_text(
        "_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'\n"
        "custom_imports = dict(imports=['mmfocal'], allow_failed_imports=False)\n"
        "model = dict(\n"
        "    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),\n"
        "    backbone=dict(_delete_=True, type='FocalTransformer', arch='tiny', depths=(1, 1, 1, 1),\n"
        "                  out_indices=(1, 2, 3)),\n"
        "    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_output'))\n")
    cfg = Config.fromfile(str(path))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(cfg.model)
    model.init_weights()
    results = predict_once(model, 'mmdet')
    assert results[0].pred_instances.bboxes.shape[1] == 4


@pytest.mark.slow
def test_flops_of_the_flagship_within_five_percent_of_the_paper() -> None:
    res = complexity(Config.fromfile(osp.join(REPO, 'configs/mask_rcnn/focal_tiny_1x.py')))
    assert res['shape'] == (800, 1280)
    assert abs(res['flops'] / 291e9 - 1) <= 0.05, res['flops'] / 1e9
