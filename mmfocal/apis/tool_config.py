"""What a training or test run needs checked before it starts, as plain functions that raise.

``tools/train.py`` and ``tools/test.py`` (and anyone's own scripts) call these; they raise :class:`UserError`
for input a user can fix and never end the process (the tools turn the error into one line).
"""

import os
import os.path as osp
from typing import List, Optional, Tuple

import torch
from mmengine.config import Config

__all__ = ['UserError', 'annotation_files', 'build_runner', 'check_dataset_paths', 'check_pretrained_files',
           'check_resume_matches', 'classifier_checkpoint', 'dataset_hint', 'default_work_dir', 'explain_data_error',
           'load_tool_config']


class UserError(Exception):
    """An input problem the user can fix; the tools print it without a traceback."""


def default_work_dir(config: str) -> str:
    """``./work_dirs/<method folder>/<config name>``: configs of the same name in different method folders
    (``retinanet/focal_tiny_1x.py``, ``mask_rcnn/focal_tiny_1x.py``) never share checkpoints.

    Args:
        config: Config path.

    Returns:
        The work dir.
    """
    folder = osp.basename(osp.dirname(osp.abspath(config)))
    return osp.join('./work_dirs', folder, osp.splitext(osp.basename(config))[0])


def check_pretrained_files(cfg: Config) -> None:
    """Raise :class:`UserError` when the backbone's ``Pretrained`` checkpoint is not on disk, naming where to
    download it (training reads it in ``init_weights``; this says so before any data is loaded).

    Args:
        cfg: A prepared config.
    """
    from ..models.utils.focal_checkpoint import check_checkpoint_exists, pretrained_checkpoint
    path = pretrained_checkpoint((cfg.model.get('backbone') or {}).get('init_cfg'))
    if path is not None:
        try:
            check_checkpoint_exists(path, 'backbone init_cfg checkpoint')
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None


def check_resume_matches(cfg: Config) -> Optional[str]:
    """Raise :class:`UserError` when the checkpoint a resume would continue from holds another model.

    mmengine resumes non-strictly: a RetinaNet checkpoint would silently half-load into a Mask R-CNN
    (its iteration counter and optimizer state included). Compared: the names and shapes of the model's
    tensors, from the checkpoint (memory-mapped) and from the config's model (built, no weights read).

    Args:
        cfg: A prepared config with ``resume`` set.

    Returns:
        The checkpoint the run will resume from, or None when there is none (a fresh start).
    """
    from mmengine.runner import find_latest_checkpoint

    from ..utils.checkpoint_compat import safe_torch_load
    from ..utils.config import build_model
    path = cfg.get('load_from') or find_latest_checkpoint(cfg.work_dir)
    if not path or '://' in path or not osp.isfile(path):
        return None
    checkpoint = safe_torch_load(path, mmap=True)
    saved = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
    saved = {k: tuple(v.shape) for k, v in saved.items() if hasattr(v, 'shape')}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ours = {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}
    missing = sorted(set(ours) - set(saved))
    unexpected = sorted(set(saved) - set(ours))
    reshaped = sorted(k for k in set(ours) & set(saved) if ours[k] != saved[k])
    if not (missing or unexpected or reshaped):
        return path
    meta = checkpoint.get('meta') or {}
    trained = f" (experiment {meta['experiment_name']!r})" if meta.get('experiment_name') else ''
    examples = ', '.join((missing + unexpected + reshaped)[:3])
    raise UserError(
        f'cannot resume from {path}: it holds another model{trained} than this config builds '
        f'({len(missing)} tensors missing, {len(unexpected)} unexpected, {len(reshaped)} of another shape; '
        f'e.g. {examples}). Resume from a checkpoint of this config, or give a new --work-dir.')


def load_tool_config(config: str, cfg_options: Optional[dict], launcher: str,
                     work_dir: Optional[str]) -> Tuple[Config, str]:
    """What tools/train.py and tools/test.py both do with a config before their own options.

    Loads the file, applies ``--cfg-options``, checks the scope, sets launcher and work dir, prepares a CPU
    distributed run and switches SyncBN to BN when it cannot synchronise.

    Args:
        config: Config path.
        cfg_options: ``--cfg-options`` overrides, or None.
        launcher: ``--launcher`` value.
        work_dir: ``--work-dir`` value, or None for the config's ``work_dir`` or else
            :func:`default_work_dir`.

    Returns:
        (config, ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``).
    """
    from ..engine import setup_distributed_cpu
    from ..utils.config import syncbn_to_bn, task_of
    if not osp.isfile(config):
        raise UserError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = task_of(cfg)
    cfg.launcher = launcher
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    distributed_cpu = setup_distributed_cpu(cfg, launcher)
    # SyncBN needs several processes, and CUDA: on CPU even a gloo run uses BN.
    syncbn_to_bn(cfg, distributed=launcher != 'none' and not distributed_cpu)
    return cfg, scope


def dataset_hint(scope: str) -> str:
    """Where the real datasets go, and how to run the demo instead."""
    if scope == 'mmpretrain':
        real = ('ImageNet goes to data/imagenet (train/, val/ and meta/{train,val}.txt, see mmpretrain docs '
                '"Prepare dataset"); a dataset of your own in the folder layout (CLASS/IMAGE) goes where the '
                "config's data_root says")
    elif scope == 'mmseg':
        real = ('ADE20K goes to data/ade/ADEChallengeData2016 (images/ and annotations/ from '
                'http://sceneparsing.csail.mit.edu, see mmseg docs "Prepare datasets")')
    else:
        real = ('COCO 2017 goes to data/coco (train2017/, val2017/, annotations/instances_*.json from '
                'https://cocodataset.org)')
    return f'{real}; or run the embedded demo: `make demo` (data from tools/misc/make_demo_data.py).'


def _datasets(node) -> list:
    """All dataset configs inside a dataloader's dataset (wrappers such as RepeatDataset included)."""
    if not isinstance(node, dict):
        return []
    found = [node] if 'ann_file' in node or 'data_prefix' in node else []
    for key in ('dataset', 'datasets'):
        child = node.get(key)
        for c in (child if isinstance(child, (list, tuple)) else [child]):
            found += _datasets(c)
    return found


def check_dataset_paths(cfg: Config, scope: str, loaders: List[str]) -> None:
    """Raise :class:`UserError` naming the missing folder/file of any dataset used by ``loaders``.

    Args:
        cfg: The config.
        scope: ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``.
        loaders: Names such as ``'train_dataloader'``.
    """
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for ds in _datasets(cfg[loader].get('dataset')):
            root = ds.get('data_root') or ''
            paths = []
            if ds.get('ann_file'):
                paths.append(osp.join(root, ds['ann_file']))
            prefix = ds.get('data_prefix') or {}
            for value in (prefix.values() if isinstance(prefix, dict) else [prefix]):
                if isinstance(value, str) and value:
                    paths.append(osp.join(root, value))
            for path in paths:
                if not osp.exists(path):
                    raise UserError(f'{loader}: {path} does not exist. {dataset_hint(scope)}')


def build_runner(cfg: Config, scope: str):
    """Build mmengine's Runner (or the config's ``runner_type``) with the scope's modules registered.

    Args:
        cfg: A prepared config.
        scope: ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``.

    Returns:
        The runner.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if scope == 'mmdet':
        from mmdet.utils import register_all_modules
    elif scope == 'mmpretrain':
        from mmpretrain.utils import register_all_modules
    else:
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    if cfg.get('compile'):
        _compile_backbone(runner)
    return runner


def _compile_backbone(runner) -> None:
    """Apply the config's ``compile`` option (``True`` or ``torch.compile`` arguments) to the model's backbone.

    mmengine compiles the whole ``train_step``, optimizer step included, which dynamo fails to trace on torch
    2.14 with mmengine 0.10.7 (``'UserDefinedDictVariable' object has no attribute 'items'`` in the
    param-scheduler wrapper, whatever the model). The backbone's forward is compiled in place instead (its
    state-dict keys stay as they are); models without a ``backbone`` keep mmengine's behaviour.
    """
    import torch
    option = runner.cfg.get('compile')
    model = getattr(runner.model, 'module', runner.model)  # under DDP
    backbone = getattr(model, 'backbone', None)
    if backbone is None:
        return
    kwargs = {} if option is True else dict(option)
    backbone.forward = torch.compile(backbone.forward, **kwargs)
    runner.cfg.compile = None  # mmengine's Runner.train() compiles nothing more


def annotation_files(cfg: Config) -> List[str]:
    """The annotation files of every dataset in the config's dataloaders (for error messages)."""
    files = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader):
            for ds in _datasets(cfg[loader].get('dataset')):
                if ds.get('ann_file'):
                    files.append(osp.join(ds.get('data_root') or '', ds['ann_file']))
    return sorted(set(files))


def explain_data_error(exc: BaseException, ann_files: List[str] = ()) -> Optional[str]:
    """A one-line explanation for a corrupt image or annotation file, or None if ``exc`` is something else.

    Args:
        exc: The exception raised while building or running the runner.
        ann_files: The config's annotation files, named when one of them cannot be parsed.

    Returns:
        The message, or None.
    """
    import json
    chain: Optional[BaseException] = exc
    while chain is not None:
        if isinstance(chain, UserError):
            return str(chain)
        if isinstance(chain, json.JSONDecodeError) or 'JSONDecodeError' in str(chain):
            bad = [f for f in ann_files if f.endswith('.json') and not _valid_json(f)]
            where = ', '.join(bad) if bad else 'an annotation file'
            return f'{where} is not valid JSON ({chain}); regenerate or re-download it.'
        text = str(chain)
        if 'failed to load image' in text or 'cannot identify image file' in text:
            return (f'{text.strip()}: the image file is missing or corrupt; replace it or remove it from the '
                    'annotations.')
        chain = chain.__cause__ or chain.__context__
    return None


def _valid_json(path: str) -> bool:
    import json
    try:
        with open(path) as f:
            json.load(f)
        return True
    except (OSError, ValueError):
        return False


def classifier_checkpoint(path: str, work_dir: str) -> str:
    """The checkpoint ``tools/test.py`` gives an mmpretrain config: an official ImageNet file converted once.

    An official file (``patch_embed.*``, ``layers.*``, ``norm.*``, ``head.*``) does not fit mmpretrain's
    ``ImageClassifier`` (``backbone.*``, ``head.fc.*``), and loading it as it is would leave the model random.
    Such a file is written converted to ``work_dir``; any other file is returned as it is.

    Args:
        path: The checkpoint given on the command line.
        work_dir: The run's work directory.

    Returns:
        The path to load.
    """
    from ..models.classifiers import official_to_image_classifier
    from ..models.utils.focal_checkpoint import load_checkpoint_file
    state = official_to_image_classifier(load_checkpoint_file(path))
    if state is None:
        return path
    os.makedirs(work_dir, exist_ok=True)
    out = osp.join(work_dir, 'converted_' + osp.basename(path))
    torch.save({'state_dict': state, 'meta': {'source': osp.basename(path), 'converter': 'mmfocal'}}, out)
    return out
