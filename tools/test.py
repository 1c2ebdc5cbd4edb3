"""Evaluate a checkpoint: COCO bbox/segm AP (detection), mIoU (segmentation), top-1/top-5 (classification).

Classification configs (``configs/imagenet/``) take the official ImageNet files as they are (converted once into
the work dir for mmpretrain's ``ImageClassifier``).

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR] [--tta]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
    bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [args]

The backbone's ImageNet ``init_cfg`` is not read here: mmengine applies it only when training starts.
"""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tool_runner, visualize (also when loaded by path)


def parse_args() -> argparse.Namespace:
    """Command-line arguments, as in mmdet's and mmseg's tools/test.py."""
    from tool_runner import add_launcher_args
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file (.pkl)')
    parser.add_argument('--show-dir', help='directory where painted images are saved')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (the config\'s tta_pipeline)')
    add_launcher_args(parser)
    return parser.parse_args()


def build_config(args: argparse.Namespace):
    """Load and prepare the config; raise UserError on bad input."""
    from mmengine.config import ConfigDict

    from mmfocal.apis import UserError, check_dataset_paths, classifier_checkpoint, load_tool_config
    if not osp.isfile(args.checkpoint):
        raise UserError(f'checkpoint not found: {args.checkpoint} (train one with tools/train.py, '
                        'or give the path of a downloaded one)')
    cfg, scope = load_tool_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    cfg.load_from = classifier_checkpoint(args.checkpoint, cfg.work_dir) if scope == 'mmpretrain' else args.checkpoint
    cfg.resume = False
    if args.show_dir and scope == 'mmpretrain':
        raise UserError('--show-dir draws detections and masks; classification configs have nothing to draw')
    if args.show_dir:
        vis = cfg.default_hooks.get('visualization')
        if vis is None:
            raise UserError('--show-dir needs a visualization hook in default_hooks (mmdet/mmseg runtimes have one)')
        vis.draw = True
        vis.interval = 1
        if scope == 'mmdet':
            vis.test_out_dir = args.show_dir
        else:
            vis.show = False
            cfg.visualizer.save_dir = args.show_dir
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise UserError('--out must be a .pkl file')
        evaluator = cfg.test_evaluator
        dump = ConfigDict(type='DumpResults', out_file_path=args.out) if scope in ('mmdet', 'mmpretrain') else None
        if dump is not None:
            cfg.test_evaluator = (list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]) + [dump]
        else:
            cfg.test_evaluator.output_dir = osp.dirname(args.out) or '.'
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise UserError(f'--tta: {args.config} defines no tta_model/tta_pipeline')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    check_dataset_paths(cfg, scope, ['test_dataloader'])
    return cfg, scope


def main() -> None:
    """Entry point."""
    from tool_runner import run_tool
    run_tool(parse_args(), build_config, lambda runner: runner.test())


if __name__ == '__main__':
    main()
