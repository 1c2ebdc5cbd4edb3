"""Train a detector or segmentor from an mmfocal (or any mmdet/mmseg) config.

Usage:
    python tools/train.py configs/mask_rcnn/focal_tiny_1x.py [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
    bash tools/dist_train.sh CONFIG NUM_PROCS [args]      # PyTorch DDP through torchrun

The task (detection or segmentation) comes from the config's ``default_scope``. Without a distributed
launcher, SyncBN in the config is switched to BN (with a warning).
"""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tool_runner, visualize (also when loaded by path)


def parse_args() -> argparse.Namespace:
    """Command-line arguments, as in mmdet's and mmseg's tools/train.py."""
    from tool_runner import add_launcher_args
    parser = argparse.ArgumentParser(description='Train a detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr by the total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir when no CKPT is given')
    add_launcher_args(parser)
    return parser.parse_args()


def build_config(args: argparse.Namespace):
    """Load the config and apply the command-line options; raise UserError on bad input."""
    from mmfocal.apis import (UserError, check_dataset_paths, check_pretrained_files, check_resume_matches,
                                   load_tool_config)
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
    if cfg.resume and check_resume_matches(cfg):
        # the weights come from the checkpoint: the ImageNet file is neither read nor needed
        if cfg.model.get('backbone') is not None:
            cfg.model.backbone.init_cfg = None
    else:
        check_pretrained_files(cfg)
    return cfg, scope


def main() -> None:
    """Entry point."""
    from tool_runner import run_tool
    run_tool(parse_args(), build_config, lambda runner: runner.train())


if __name__ == '__main__':
    main()
