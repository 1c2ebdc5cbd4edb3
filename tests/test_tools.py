"""tools/train.py, test.py, infer.py and dist_train.sh on the embedded demo data (CPU)."""

import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MASK = 'configs/demo/mask_rcnn_focal_tiny_demo.py'
UPER = 'configs/demo/upernet_focal_tiny_demo.py'
REPPOINTS = 'configs/demo/reppoints_v2_focal_tiny_demo.py'
DEMO_IMAGE = 'data/demo/coco/val/demo_val_0000.jpg'
DEMO_ANN = 'data/demo/coco/annotations/instances_val.json'


def tool(*args: str, check: bool = True, env: dict = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result


@pytest.fixture(scope='module', autouse=True)
def demo_data() -> None:
    tool('tools/misc/make_demo_data.py', '--out', 'data/demo', '--if-changed')


def scalars(work_dir: str) -> list:
    """Records of the newest run's json log."""
    # training runs log to <timestamp>/vis_data/<timestamp>.json, test runs to <timestamp>/<timestamp>.json
    logs = sorted(p for p in glob.glob(osp.join(work_dir, '*', '*.json')) + glob.glob(
        osp.join(work_dir, '*', 'vis_data', '*.json')) if osp.basename(p)[:-5] in p.split(os.sep)[-3:-1])
    return [json.loads(line) for line in open(logs[-1])]


def train_losses(work_dir: str) -> list:
    return [r['loss'] for r in scalars(work_dir) if 'loss' in r]


@pytest.mark.slow
@pytest.mark.stack_e2e
def test_mask_rcnn_demo_trains_checkpoints_and_tests_with_coco_metrics(tmp_path) -> None:
    work = str(tmp_path / 'mrcnn')
    tool('tools/train.py', MASK, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1',
         'train_cfg.val_interval=1', 'default_hooks.logger.interval=2', 'default_hooks.checkpoint.interval=1',
         'train_dataloader.dataset.indices=48', 'val_dataloader.dataset.indices=4')
    losses = train_losses(work)
    assert len(losses) == 6
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses  # training loss falls
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    out = tool('tools/test.py', MASK, ckpt, '--work-dir', str(tmp_path / 'test'))
    assert 'Average Precision' in out.stdout  # pycocotools' table
    metrics = scalars(str(tmp_path / 'test'))[-1]
    for key in ('coco/bbox_mAP', 'coco/segm_mAP', 'coco/bbox_mAP_50'):
        assert 0.0 <= metrics[key] <= 1.0
    # ground truth | prediction, each panel 512 px, and the drawn detections as JSON
    import mmcv
    png, dump = str(tmp_path / 'pred.png'), str(tmp_path / 'pred.json')
    tool('tools/infer.py', DEMO_IMAGE, MASK, ckpt, '--out', png, '--score-thr', '0.0', '--gt', DEMO_ANN,
         '--dump', dump)
    assert mmcv.imread(png).shape == (512, 2 * 512 + 8, 3)
    drawn = json.load(open(dump))
    assert drawn['classes'] == ['square', 'disc', 'cross'] and drawn['detections']
    assert all(len(d['box']) == 4 and 0 <= d['label'] < 3 and 0 <= d['score'] <= 1 for d in drawn['detections'])
    root = osp.join(REPO, 'data/demo/coco/')
    out = _stock_test_without_imagenet_weights(
        tmp_path, 'mmdet', MASK, ckpt,
        [f'test_dataloader.dataset.data_root={root}', f'test_evaluator.ann_file={root}annotations/instances_val.json'])
    assert 'coco/bbox_mAP' in out


@pytest.mark.slow
@pytest.mark.stack_e2e
def test_demo_runs_are_deterministic(tmp_path) -> None:
    """Two short seeded runs of the Mask R-CNN demo (RPN and RoI sampling included) log the same numbers."""
    runs = []
    for name in ('first', 'second'):
        work = str(tmp_path / name)
        tool('tools/train.py', MASK, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1',
             'train_cfg.val_interval=100', 'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1',
             'train_dataloader.dataset.indices=12')
        tool('tools/test.py', MASK, osp.join(work, 'epoch_1.pth'), '--work-dir', osp.join(work, 'test'),
             '--cfg-options', 'test_dataloader.dataset.indices=4', 'model.test_cfg.rcnn.score_thr=0.0')
        losses = [{k: v for k, v in r.items() if k.startswith('loss')} for r in scalars(work) if 'loss' in r]
        metrics = {k: v for k, v in scalars(osp.join(work, 'test'))[-1].items() if k.startswith('coco/')}
        runs.append((losses, metrics))
    assert len(runs[0][0]) == 3 and runs[0][1]
    assert runs[0] == runs[1]


def _first_image_objects(dump: str) -> tuple:
    """Ground truth and drawn predictions of the demo's first validation image, as drawing dicts."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('infer_tool', osp.join(REPO, 'tools/infer.py'))
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    truth = infer.coco_ground_truth(osp.join(REPO, DEMO_ANN), DEMO_IMAGE, ['square', 'disc', 'cross'])
    return truth, json.load(open(dump))['detections']


@pytest.mark.slow
@pytest.mark.demo
def test_make_demo_reaches_its_numbers_and_finds_each_object_once(tmp_path) -> None:
    """`make demo` as the README promises: box and mask AP >= 0.5, mIoU >= 80, readable pictures."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    from visualize import match_detections
    work = tmp_path / 'demo'
    out = tool('tools/demo.py', '--work-dir', str(work)).stdout
    det = scalars(str(work / 'mask_rcnn' / 'test'))[-1]
    seg = scalars(str(work / 'upernet' / 'test'))[-1]
    assert det['coco/bbox_mAP'] >= 0.5 and det['coco/segm_mAP'] >= 0.5, det
    assert seg['mIoU'] >= 80, seg
    # printed as people read them: 3 significant digits
    assert f"box AP {det['coco/bbox_mAP']:#.3g}, mask AP {det['coco/segm_mAP']:#.3g}" in out
    assert f"mIoU {seg['mIoU']:#.3g}" in out and 'not what Focal-T reaches on COCO or ADE20K' in out
    truth, drawn = _first_image_objects(str(work / 'mask_rcnn' / 'mask_rcnn_prediction.json'))
    found = match_detections(truth, drawn)
    assert len(truth) >= 2 and not found['missed'] and not found['extra'], (truth, drawn)
    assert len(found['matches']) == len(truth) and all(same for _, _, same in found['matches'])
    import mmcv
    for name in ('mask_rcnn', 'upernet'):
        picture = mmcv.imread(str(work / name / f'{name}_prediction.png'))
        assert picture.shape[0] >= 512 and picture.shape[1] >= 2 * 512
        assert str(work / name / f'{name}_prediction.png') in out
        curves = work / name / f'{name}_training_curves.png'
        assert curves.is_file() and str(curves) in out


def _stock_test_without_imagenet_weights(tmp_path, scope: str, config: str, ckpt: str, options: list) -> str:
    """mmdet's or mmseg's own tools/test.py, from a folder without checkpoints/, on a config whose backbone
    names the official ImageNet file: testing builds the model and loads the trained checkpoint, nothing else.

    Returns:
        What the tool printed.
    """
    package = __import__(scope)
    elsewhere = tmp_path / f'stock_{scope}'
    elsewhere.mkdir()
    cfg = elsewhere / 'with_imagenet_init.py'
    cfg.write_text(f"_base_ = '{osp.join(REPO, config)}'\n"
                   "model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', "
                   "checkpoint='checkpoints/focal-tiny-is224-ws7.pth')))\n")
    stock = osp.join(osp.dirname(package.__file__), '.mim', 'tools', 'test.py')
    result = subprocess.run([sys.executable, stock, str(cfg), ckpt, '--work-dir', str(elsewhere / 'w'),
                             '--cfg-options', *options], cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (elsewhere / 'checkpoints').exists()
    return result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.stack_e2e
def test_reppoints_v2_demo_learns_and_tests_with_coco_metrics(tmp_path) -> None:
    """The Swin/Focal recipe (BiFPN, QFL, V2 assigners) on the demo data: one epoch of 40 steps."""
    work = str(tmp_path / 'rpv2')
    tool('tools/train.py', REPPOINTS, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1',
         'train_cfg.val_interval=1', 'default_hooks.logger.interval=5', 'default_hooks.checkpoint.interval=1',
         'val_dataloader.dataset.indices=4')
    records = [r for r in scalars(work) if 'loss' in r]
    assert len(records) == 8
    for key in ('loss_cls', 'loss_pts_init', 'loss_pts_refine', 'loss_heatmap', 'loss_offset', 'loss_sem'):
        assert all(0 < r[key] < 100 for r in records), key
    first, last = records[0], records[-1]
    assert last['loss'] < 0.7 * first['loss'], (first, last)  # it learns
    for key in ('loss_pts_refine', 'loss_heatmap', 'loss_sem'):
        assert last[key] < first[key], key
    out = tool('tools/test.py', REPPOINTS, osp.join(work, 'epoch_1.pth'), '--work-dir', str(tmp_path / 'test'),
               '--cfg-options', 'model.test_cfg.score_thr=0.0')
    assert 'Average Precision' in out.stdout
    assert 0.0 <= scalars(str(tmp_path / 'test'))[-1]['coco/bbox_mAP'] <= 1.0


# beyond the paper: 6 iterations on one batch of 2 training images (a loss that must fall within a few steps,
# whatever the data order), then the validation of 2 images
BEYOND_PAPER_DEMOS = {
    'configs/demo/dino_focal_tiny_demo.py': ['train_cfg.max_epochs=6', 'train_cfg.val_interval=6'],
    'configs/demo/mask2former_focal_tiny_demo.py': ['train_cfg.max_iters=6', 'train_cfg.val_interval=6'],
    'configs/demo/mask2former_seg_focal_tiny_demo.py': ['train_cfg.max_iters=6', 'train_cfg.val_interval=6'],
}


@pytest.mark.slow
@pytest.mark.parametrize('config', sorted(BEYOND_PAPER_DEMOS))
def test_beyond_paper_demo_trains_and_validates(tmp_path, config: str) -> None:
    work = str(tmp_path / 'work')
    tool('tools/train.py', config, '--work-dir', work, '--cfg-options', *BEYOND_PAPER_DEMOS[config],
         'train_dataloader.batch_size=2', 'train_dataloader.dataset.indices=2', 'val_dataloader.dataset.indices=2',
         'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=100')
    records = scalars(work)
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 6 and losses[-1] < losses[0], losses  # logged as the running mean: it falls
    metric = 'mIoU' if 'seg' in config else 'coco/bbox_mAP'
    assert 0.0 <= records[-1][metric] <= 100.0, records[-1]


@pytest.mark.slow
@pytest.mark.stack_e2e
def test_upernet_demo_trains_and_tests_with_miou(tmp_path) -> None:
    work = str(tmp_path / 'uper')
    tool('tools/train.py', UPER, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=24',
         'train_cfg.val_interval=24', 'default_hooks.logger.interval=4', 'default_hooks.checkpoint.interval=24')
    losses = train_losses(work)
    assert losses[-1] < 0.9 * losses[0], losses
    ckpt = osp.join(work, 'iter_24.pth')
    tool('tools/test.py', UPER, ckpt, '--work-dir', str(tmp_path / 'test'), '--show-dir', str(tmp_path / 'vis'))
    metrics = scalars(str(tmp_path / 'test'))[-1]
    assert 0.0 <= metrics['mIoU'] <= 100.0 and metrics['aAcc'] > 0
    assert len(glob.glob(str(tmp_path / 'vis' / '**' / '*.png'), recursive=True)) == 16  # one per val image
    png = str(tmp_path / 'seg.png')
    tool('tools/infer.py', 'data/demo/ade/images/validation/demo_val_0001.jpg', UPER, ckpt, '--out', png)
    import mmcv
    assert mmcv.imread(png).shape == (512, 512, 3)
    root = osp.join(REPO, 'data/demo/ade/')
    out = _stock_test_without_imagenet_weights(tmp_path, 'mmseg', UPER, ckpt,
                                               [f'test_dataloader.dataset.data_root={root}'])
    assert 'mIoU' in out


@pytest.mark.slow
@pytest.mark.stack_e2e
def test_resume_continues_at_the_saved_iteration_with_the_same_schedule(tmp_path) -> None:
    opts = ['default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=4', 'train_cfg.val_interval=100']
    straight = str(tmp_path / 'straight')
    tool('tools/train.py', UPER, '--work-dir', straight, '--cfg-options', 'train_cfg.max_iters=8', *opts)
    work = str(tmp_path / 'interrupted')
    tool('tools/train.py', UPER, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=8',
         'train_cfg.max_iters=4', *opts)  # "interrupted" after 4 iterations (checkpoint at 4)
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
    tool('tools/train.py', UPER, '--work-dir', work, '--resume', '--cfg-options', 'train_cfg.max_iters=8', *opts)
    resumed = [r for r in scalars(work) if 'lr' in r]
    reference = {r['iter']: r['lr'] for r in scalars(straight) if 'lr' in r}
    assert [r['iter'] for r in resumed] == [5, 6, 7, 8]
    for r in resumed:
        assert r['lr'] == pytest.approx(reference[r['iter']])


@pytest.mark.slow
@pytest.mark.stack_e2e
def test_two_process_gloo_ddp_training(tmp_path) -> None:
    work = str(tmp_path / 'ddp')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', UPER, '2', '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=3',
         'train_cfg.val_interval=100', 'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=3'],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, 'PYTHON': sys.executable, 'PORT': '29531'})
    assert result.returncode == 0, result.stderr[-3000:]
    log = open(glob.glob(osp.join(work, '*', '*.log'))[0]).read()
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size, also on CPU
    assert osp.isfile(osp.join(work, 'iter_3.pth'))


# --- clear errors ---------------------------------------------------------------------------

def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr[-2000:]


def test_missing_dataset_folder_says_where_data_goes() -> None:
    result = tool('tools/train.py', 'configs/mask_rcnn/focal_tiny_1x.py', check=False)
    assert_clean_error(result, 'data/coco/', 'does not exist', 'COCO 2017 goes to data/coco', 'make demo')
    result = tool('tools/train.py', 'configs/upernet/focal_tiny_160k_ade20k.py', check=False)
    assert_clean_error(result, 'ADE20K goes to data/ade')


def test_missing_checkpoint_is_a_clear_error(tmp_path) -> None:
    result = tool('tools/test.py', MASK, str(tmp_path / 'missing.pth'), check=False)
    assert_clean_error(result, 'checkpoint not found')
    result = tool('tools/train.py', MASK, '--resume', str(tmp_path / 'missing.pth'), check=False)
    assert_clean_error(result, '--resume checkpoint not found')


def test_missing_pretrained_backbone_is_a_clear_error(tmp_path) -> None:
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"_base_ = '{osp.join(REPO, MASK)}'\n"
                   "model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', "
                   "checkpoint='nope/focal-small-useconv-is224-ws7.pth')))\n")
    result = tool('tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w'), check=False)
    assert_clean_error(result, "checkpoint not found: 'nope/focal-small-useconv-is224-ws7.pth': download it from "
                               'https://projects4jw.blob.core.windows.net/model/focal-transformer/imagenet1k/'
                               'focal-small-useconv-is224-ws7.pth')
    assert [ln for ln in result.stderr.splitlines() if ln.startswith('error:')] == [result.stderr.splitlines()[-1]]
    assert not glob.glob(str(tmp_path / 'w' / '*' / '*.log'))


def test_default_work_dirs_of_same_named_configs_differ(tmp_path) -> None:
    from mmfocal.apis import load_tool_config
    dirs = set()
    for method in ('retinanet', 'mask_rcnn', 'atss'):
        cfg, _ = load_tool_config(osp.join(REPO, 'configs', method, 'focal_tiny_1x.py'), None, 'none', None)
        dirs.add(cfg.work_dir)
    assert dirs == {f'./work_dirs/{m}/focal_tiny_1x' for m in ('retinanet', 'mask_rcnn', 'atss')}
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    (tmp_path / 'a' / 'exp.py').write_text(f"_base_ = '{osp.join(REPO, UPER)}'\n")
    (tmp_path / 'b' / 'exp.py').write_text(f"_base_ = '{osp.join(REPO, MASK)}'\n")
    got = [load_tool_config(str(tmp_path / d / 'exp.py'), None, 'none', None)[0].work_dir for d in 'ab']
    assert got == ['./work_dirs/a/exp', './work_dirs/b/exp']


def test_resuming_another_models_checkpoint_is_one_clear_error(tmp_path) -> None:
    import torch

    from mmfocal.utils.config import build_model
    from mmengine.config import Config
    # a RetinaNet-like checkpoint where the config builds a Mask R-CNN: mmengine would half-load it
    other = build_model(Config.fromfile(osp.join(REPO, UPER)))
    work = tmp_path / 'w'
    work.mkdir()
    torch.save({'state_dict': other.state_dict(), 'meta': dict(experiment_name='upernet_demo_20261127')},
               work / 'epoch_1.pth')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    result = tool('tools/train.py', MASK, '--work-dir', str(work), '--resume', check=False)
    assert_clean_error(result, f'cannot resume from {work / "epoch_1.pth"}: it holds another model '
                               "(experiment 'upernet_demo_20261127')", 'give a new --work-dir')
    result = tool('tools/train.py', MASK, '--work-dir', str(work), '--resume', str(work / 'epoch_1.pth'), check=False)
    assert_clean_error(result, 'it holds another model')


def test_amp_without_cuda_is_a_clear_error(tmp_path) -> None:
    result = tool('tools/train.py', UPER, '--amp', '--work-dir', str(tmp_path / 'w'), check=False)
    assert_clean_error(result, '--amp needs a CUDA device')


def test_config_of_another_task_is_one_clear_error(tmp_path) -> None:
    cfg = tmp_path / 'ocr.py'
    cfg.write_text("default_scope = 'mmocr'\nmodel = dict(type='DBNet')\n")
    result = tool('tools/train.py', str(cfg), check=False)
    assert_clean_error(result, "none of 'mmdet' (detection), 'mmseg' (segmentation), 'mmpretrain' (classification)")


def _copy_demo_coco(tmp_path) -> str:
    root = str(tmp_path / 'coco')
    shutil.copytree(osp.join(REPO, 'data/demo/coco'), root)
    return root


def _coco_opts(root: str) -> list:
    return [f'train_dataloader.dataset.data_root={root}/', f'val_dataloader.dataset.data_root={root}/',
            f'test_dataloader.dataset.data_root={root}/',
            f'val_evaluator.ann_file={root}/annotations/instances_val.json', 'train_cfg.max_epochs=1']


def test_corrupt_image_names_the_file(tmp_path) -> None:
    root = _copy_demo_coco(tmp_path)
    bad = osp.join(root, 'train', 'demo_train_0000.jpg')
    with open(bad, 'wb') as f:
        f.write(b'not a jpeg at all')
    result = tool('tools/train.py', MASK, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                  *_coco_opts(root), 'train_dataloader.sampler.shuffle=False', check=False)
    assert_clean_error(result, 'demo_train_0000.jpg', 'missing or corrupt')


def test_corrupt_annotation_names_the_file(tmp_path) -> None:
    root = _copy_demo_coco(tmp_path)
    ann = osp.join(root, 'annotations', 'instances_train.json')
    with open(ann, 'w') as f:
        f.write('{"images": [ this is broken')
    result = tool('tools/train.py', MASK, '--work-dir', str(tmp_path / 'w'), '--cfg-options', *_coco_opts(root),
                  check=False)
    assert_clean_error(result, 'instances_train.json is not valid JSON')
