"""Train a detector or pose model from an mmengine config (MMDetection's arguments).

Differences from ``mmdet/tools/train.py``: it imports mmext (registers its modules and makes
checkpoints resumable under torch >= 2.6), names a missing dataset file clearly, and runs
``--launcher pytorch|slurm|mpi`` on CPU-only machines through gloo.
"""
import argparse
import os
import sys

import torch
from mmengine.config import Config, DictAction

import mmext  # noqa: F401  (registers mmext modules, checkpoint compatibility)
from mmext.models.detectors.distillation import TeacherLoadError
from mmext.utils.checkpoint_compat import UnsafeCheckpointError
from mmext.utils.launch import (DatasetNotFoundError, apply_common_args, build_runner,
                                check_data_paths, explain_empty_dataset)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (GPU only)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a path, from the latest checkpoint in '
        'the work directory')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs (e.g. '
        'train_dataloader.batch_size=4 or key="[a,b]")')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    apply_common_args(cfg, args)
    if args.amp:
        if not torch.cuda.is_available():
            sys.exit('error: --amp (automatic mixed precision) needs a CUDA GPU; none is '
                     'visible here, so train without --amp')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = dict(enable=False, '
                               'base_batch_size=N)` in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    try:
        check_data_paths(cfg)
    except DatasetNotFoundError as e:
        sys.exit(f'error: {e}')
    try:
        build_runner(cfg).train()
    # load_from, --resume, init_cfg=Pretrained or a distillation teacher's config/checkpoint
    except (UnsafeCheckpointError, TeacherLoadError) as e:
        sys.exit(f'error: {e}')
    except ValueError as e:  # mmengine's bare message for a dataset with no items
        reason = 'need at least one array' in str(e) and explain_empty_dataset(cfg)
        if not reason:
            raise
        sys.exit(f'error: {reason}')


if __name__ == '__main__':
    main()
