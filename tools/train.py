"""Train a detector or segmentor from an mmfocal (or any mmdet/mmseg) config.

Usage:
    python tools/train.py configs/mask_rcnn/focal_tiny_1x.py [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
    bash tools/dist_train.sh CONFIG NUM_PROCS [args]      # PyTorch DDP through torchrun

The task (detection or segmentation) comes from the config's ``default_scope``. Without a distributed
launcher, SyncBN in the config is switched to BN (with a warning).
"""

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


def parse_args() -> argparse.Namespace:
    """Command-line arguments, as in mmdet's and mmseg's tools/train.py."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Train a detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr by the total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir when no CKPT is given')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value (e.g. train_cfg.max_epochs=1)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace):
    """Load the config and apply the command-line options; raise UserError on bad input."""
    from mmfocal.runtime import UserError, check_dataset_paths, load_tool_config
    cfg, scope = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise UserError('--amp needs a CUDA device: mmengine\'s AmpOptimWrapper does not train on CPU. '
                            'Drop --amp here (the backbone itself runs under torch.autocast on CPU).')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        cfg.auto_scale_lr = dict(cfg.get('auto_scale_lr') or {}, enable=True)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise UserError(f'--resume checkpoint not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    if cfg.get('load_from') and '://' not in cfg.load_from and not osp.isfile(cfg.load_from):
        raise UserError(f'load_from checkpoint not found: {cfg.load_from}')
    check_dataset_paths(cfg, scope, ['train_dataloader', 'val_dataloader'])
    return cfg, scope


def main() -> None:
    """Entry point."""
    args = parse_args()
    import mmfocal  # noqa: F401  (registers FocalTransformer, safe checkpoint loading)
    from mmfocal.runtime import UserError, run_guarded
    try:
        cfg, scope = build_config(args)
    except (UserError, ValueError, ImportError, FileNotFoundError) as exc:
        sys.exit(f'error: {exc}')
    run_guarded(lambda: _train(cfg, scope), cfg)


def _train(cfg, scope: str) -> None:
    from mmfocal.runtime import build_runner
    build_runner(cfg, scope).train()


if __name__ == '__main__':
    main()
