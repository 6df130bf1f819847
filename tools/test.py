"""Test (evaluate) a checkpoint with an mmengine config (MMDetection's arguments).

Imports mmext first: without its allow-list, torch >= 2.6 refuses to load mmengine checkpoints.
"""
import argparse
import os
import sys

from mmengine.config import Config, DictAction

import mmext  # noqa: F401
from mmext.models.detectors.distillation import TeacherLoadError
from mmext.utils.checkpoint_compat import UnsafeCheckpointError
from mmext.utils.launch import (DatasetNotFoundError, apply_common_args, build_runner,
                                check_data_paths, explain_empty_dataset)


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing '
                        'evaluation metrics')
    parser.add_argument('--out', type=str, help='dump predictions to a pickle file')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory (under the work dir) where painted '
                        'images are saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        sys.exit(f'error: --out {args.out!r} must end in .pkl or .pickle')
    cfg = Config.fromfile(args.config)
    apply_common_args(cfg, args)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        if cfg.get('default_scope', 'mmdet') != 'mmdet':
            sys.exit('error: --show/--show-dir paints detections; use it with mmdet configs')
        from mmdet.engine.hooks.utils import trigger_visualization_hook
        cfg = trigger_visualization_hook(cfg, args)
    try:
        check_data_paths(cfg, phases=('test', ))
    except DatasetNotFoundError as e:
        sys.exit(f'error: {e}')
    try:
        runner = build_runner(cfg)
    except TeacherLoadError as e:  # a distillation config: the teacher is built too
        sys.exit(f'error: {e}')
    if args.out is not None:
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    try:
        runner.test()
    except UnsafeCheckpointError as e:
        sys.exit(f'error: {e}')
    except ValueError as e:  # mmengine's bare message for a dataset with no items
        reason = 'need at least one array' in str(e) and explain_empty_dataset(cfg, ('test', ))
        if not reason:
            raise
        sys.exit(f'error: {reason}')


if __name__ == '__main__':
    main()
