"""The ImageNet classifiers through mmpretrain: configs build, official files give the official logits, tools run."""

import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmfocal.apis import classifier_checkpoint, load_model_index
from mmfocal.utils.config import build_model
from test_parity_official_v2 import official_state_dict as official_v2_state_dict

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
EVAL_CONFIGS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', 'imagenet', '*_in1k.py')))
DEMO = 'configs/demo/classification_focal_tiny_demo.py'


def tool(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    return result


def test_every_release_has_an_eval_config_in_the_index() -> None:
    assert len(EVAL_CONFIGS) == 9
    entries = {e.config: e for e in load_model_index()}
    for config in EVAL_CONFIGS:
        entry = entries[config]
        cfg = Config.fromfile(osp.join(REPO, config))
        assert cfg.default_scope == 'mmpretrain' and cfg.model.type == 'ImageClassifier'
        assert osp.basename(entry.weights) == osp.basename(cfg.model.backbone.init_cfg.checkpoint)
        assert set(entry.metrics) == {'Top 1 Accuracy', 'Top 5 Accuracy'}
        # the official evaluation: short side 256 (PIL bicubic), centre crop 224
        resize, crop = cfg.test_dataloader.dataset.pipeline[1:3]
        assert (resize.type, resize.scale, resize.edge, resize.backend, resize.interpolation) == (
            'ResizeEdge', 256, 'short', 'pillow', 'bicubic')
        assert (crop.type, crop.crop_size) == ('CenterCrop', 224)
        assert cfg.model.backbone.out_indices == (3, ) and cfg.test_evaluator.topk == (1, 5)


@pytest.mark.parametrize('config', ['configs/imagenet/focal_tiny_useconv_in1k.py',
                                    'configs/imagenet/focal_fast_tiny_in1k.py'])
def test_classifier_predicts_1000_class_scores(config: str) -> None:
    from mmpretrain.structures import DataSample
    model = build_model(Config.fromfile(osp.join(REPO, config))).eval()
    image = torch.randint(0, 255, (3, 224, 224), dtype=torch.uint8)
    with torch.no_grad():
        (result, ) = model.test_step(dict(inputs=[image], data_samples=[DataSample()]))
    assert result.pred_score.shape == (1000, ) and abs(float(result.pred_score.sum()) - 1) < 1e-4
    # the top-level data_preprocessor of mmpretrain's configs: ImageNet mean / std on RGB
    assert model.data_preprocessor.mean.flatten().tolist() == pytest.approx([123.675, 116.28, 103.53])
    assert model.data_preprocessor.to_rgb


def test_fine_tuning_configs_keep_the_imagenet_normalisation_and_take_their_classes() -> None:
    for config, classes in (('configs/imagenet/focal_tiny_finetune_custom.py', 10), (DEMO, 3)):
        cfg = Config.fromfile(osp.join(REPO, config))
        model = build_model(cfg)
        assert model.head.fc.out_features == classes and cfg.data_preprocessor.num_classes == classes
        assert model.data_preprocessor.std.flatten().tolist() == pytest.approx([58.395, 57.12, 57.375])
        assert cfg.train_dataloader.dataset.type == 'CustomDataset' and 'split' not in cfg.test_dataloader.dataset
        decay = cfg.optim_wrapper.paramwise_cfg
        assert decay.norm_decay_mult == 0 and decay.custom_keys['relative_position_bias_table'].decay_mult == 0
        assert any('relative_position_bias_table' in n for n, _ in model.named_parameters())


def test_official_file_gives_the_official_logits_in_image_classifier(tmp_path) -> None:
    """The official Focal-fast-T layout, converted by what tools/test.py runs, loads strictly into mmpretrain's
    ImageClassifier and gives the logits of the official code (the parity fixture)."""
    fixture = torch.load(osp.join(REPO, 'tests', 'fixtures', 'focal_v2_official_parity.pth'), weights_only=True)
    entry = fixture['tiny/224x224']
    path = str(tmp_path / 'focalv2-tiny-useconv-is224-ws7.pth')
    torch.save({'model': official_v2_state_dict(entry)}, path)
    converted = classifier_checkpoint(path, str(tmp_path / 'work'))
    assert converted != path
    state = torch.load(converted, weights_only=True)['state_dict']
    model = build_model(Config.fromfile(osp.join(REPO, 'configs/imagenet/focal_fast_tiny_in1k.py'))).eval()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        logits = model(entry['input'], mode='tensor')
    assert (logits - entry['logits']).abs().max() <= 1e-4
    # a checkpoint mmpretrain saved is used as it is
    torch.save({'state_dict': state}, tmp_path / 'saved.pth')
    assert classifier_checkpoint(str(tmp_path / 'saved.pth'), str(tmp_path / 'work')) == str(tmp_path / 'saved.pth')


@pytest.mark.slow
def test_tools_test_prints_top1_and_top5_of_an_official_file_on_the_demo_set(tmp_path) -> None:
    tool('tools/misc/make_demo_data.py', '--out', 'data/demo', '--if-changed')
    import timm

    import mmfocal  # noqa: F401
    model = timm.create_model('focal_tiny_patch4_window7_224')  # random weights in the official layout
    official = {('norm.' + k[6:] if k.startswith('norm3.') else k): v for k, v in model.state_dict().items()}
    ckpt = str(tmp_path / 'focal-tiny-is224-ws7.pth')
    torch.save({'model': official}, ckpt)
    cfg = tmp_path / 'on_demo.py'
    cfg.write_text(
        f"_base_ = '{osp.join(REPO, 'configs/imagenet/focal_tiny_in1k.py')}'\n"
        "test_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, dataset=dict(_delete_=True, "
        f"type='CustomDataset', data_root='{osp.join(REPO, 'data/demo/cls')}', data_prefix='val', "
        "pipeline={{_base_.test_pipeline}}))\n")
    out = tool('tools/test.py', str(cfg), ckpt, '--work-dir', str(tmp_path / 'w'))
    printed = out.stdout + out.stderr
    assert 'accuracy/top1' in printed and 'accuracy/top5' in printed


@pytest.mark.slow
@pytest.mark.stack_e2e
def test_fine_tuning_demo_learns_the_shapes(tmp_path) -> None:
    """The fine-tuning config, 3 classes, from scratch on the embedded set: loss falls, top-1 well above chance."""
    tool('tools/misc/make_demo_data.py', '--out', 'data/demo', '--if-changed')
    work = str(tmp_path / 'cls')
    tool('tools/train.py', DEMO, '--work-dir', work)
    import json
    log = sorted(glob.glob(osp.join(work, '*', 'vis_data', '*.json')))[-1]
    records = [json.loads(line) for line in open(log)]
    losses = [r['loss'] for r in records if 'loss' in r]
    top1 = [r['accuracy/top1'] for r in records if 'accuracy/top1' in r]
    assert len(losses) == 15 and sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses
    assert top1 and top1[-1] >= 80, top1  # 24 validation images, chance 42% (the largest class)


FOCALNET_CONFIGS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', 'focalnet_imagenet',
                                                                          '*_in1k.py')))


def test_every_focalnet_release_has_an_eval_config_in_the_index() -> None:
    assert [osp.basename(c) for c in FOCALNET_CONFIGS] == sorted(
        f'focalnet_{s}_{r}_in1k.py' for s in ('tiny', 'small', 'base') for r in ('srf', 'lrf'))
    entries = {e.config: e for e in load_model_index()}
    for config in FOCALNET_CONFIGS:
        entry, cfg = entries[config], Config.fromfile(osp.join(REPO, config))
        assert cfg.model.backbone.type == 'FocalNet' and cfg.model.backbone.out_indices == (3, )
        assert entry.weights.startswith('https://github.com/microsoft/FocalNet/releases/download/v1.0.0/')
        assert osp.basename(entry.weights) == osp.basename(cfg.model.backbone.init_cfg.checkpoint)
        assert set(entry.metrics) == {'Top 1 Accuracy'}  # the FocalNet README gives top-1 only
        resize, crop = cfg.test_dataloader.dataset.pipeline[1:3]  # official: short side 256 bicubic, crop 224
        assert (resize.scale, resize.interpolation, crop.crop_size) == (256, 'bicubic', 224)
        arch = osp.basename(config)[len('focalnet_'):-len('_in1k.py')]
        assert cfg.model.backbone.arch == arch and cfg.model.head.in_channels == (1024 if 'base' in arch else 768)


def test_focalnet_official_file_gives_timms_logits_in_image_classifier(tmp_path) -> None:
    """timm's FocalNet-T (random weights) written in the official classification layout, converted by what
    tools/test.py runs, loads strictly into the eval config's ImageClassifier and gives timm's logits."""
    timm = pytest.importorskip('timm')
    from mmfocal.models.utils.focalnet_checkpoint import timm_to_official
    torch.manual_seed(0)
    theirs = timm.create_model('focalnet_tiny_srf').eval()
    path = str(tmp_path / 'focalnet_tiny_srf.pth')
    torch.save({'model': timm_to_official(theirs.state_dict())}, path)
    converted = classifier_checkpoint(path, str(tmp_path / 'work'))
    state = torch.load(converted, weights_only=True)['state_dict']
    model = build_model(Config.fromfile(osp.join(REPO, 'configs/focalnet_imagenet/focalnet_tiny_srf_in1k.py'))).eval()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (model(x, mode='tensor') - theirs(x)).abs().max() <= 1e-4
