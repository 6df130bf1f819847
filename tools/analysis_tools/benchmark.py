"""Inference throughput of a config's model on CPU or GPU (mmdet's benchmark.py is GPU-only).

    python tools/analysis_tools/benchmark.py CONFIG [--checkpoint CKPT] [--shape H W]
        [--device cpu|cuda] [--max-iter N] [--num-warmup N] [--repeat-num N] [--log-interval N]

It times what MMDetection's ``benchmark.py`` times (``mmdet/utils/benchmark.py``,
``InferenceBenchmark``): ``model.test_step`` on batches of one image under ``torch.no_grad`` --
the data preprocessor and the forward with post-processing -- with the warm-up images excluded.
Without ``--shape`` the images are the config's validation images (as mmdet's tool does; synthetic
configs generate theirs); with ``--shape`` one random image of that size is fed again and again and
no dataset is needed. Output follows mmdet's ("Done image [..], fps: .. img/s", "Overall fps: ..
img/s"), followed by the spread: the median and interquartile range of the time per image, and
over several ``--repeat-num`` runs the mean and standard deviation of their fps.
"""
import argparse
import statistics
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mmext  # noqa: F401
from mmext.analysis import build_model, synthetic_batch, time_test_step
from mmext.utils.launch import DatasetNotFoundError, adapt_cfg_to_device, check_data_paths


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Inference throughput of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--checkpoint', help='checkpoint file (random weights without it)')
    parser.add_argument('--shape', type=int, nargs='+', help='input H W (or one side)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeat-num', type=int, default=1, help='number of repeated runs')
    parser.add_argument('--max-iter', type=int, default=50, help='images timed per run')
    parser.add_argument('--log-interval', type=int, default=10, help='interval of logging')
    parser.add_argument('--num-warmup', type=int, default=5, help='untimed warm-up images')
    parser.add_argument('--fuse-conv-bn', action='store_true', help='fuse conv and bn')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value pairs')
    args = parser.parse_args(argv)
    if args.shape and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H W or one side, got {args.shape}')
    for name in ('repeat_num', 'max_iter'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")}={getattr(args, name)} must be >= 1')
    if args.num_warmup < 0:
        parser.error(f'--num-warmup={args.num_warmup} must be >= 0')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: no CUDA GPU is visible; use --device cpu')
    return args


def dataset_batches(cfg, count):
    """The first ``count`` validation batches of one image, as mmdet's benchmark reads them."""
    from mmengine.runner import Runner
    check_data_paths(cfg, phases=('val', ))
    loader_cfg = cfg.val_dataloader.copy()
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    batches = []
    for batch in Runner.build_dataloader(loader_cfg):
        batches.append(batch)
        if len(batches) == count:
            break
    return batches


def spread(times):
    """'median 81.2 ms/img (IQR 79.0-84.0)' of per-image seconds."""
    ms = sorted(1000 * t for t in times)
    if len(ms) < 4:
        return f'median {statistics.median(ms):.1f} ms/img'
    q1, _, q3 = statistics.quantiles(ms, n=4)
    return f'median {statistics.median(ms):.1f} ms/img (IQR {q1:.1f}-{q3:.1f})'


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    # Runner would do this from the config; without it the dataset registry looks in mmengine's
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    adapt_cfg_to_device(cfg)
    if args.shape:
        shape = tuple(args.shape * 2 if len(args.shape) == 1 else args.shape)
        batches = [synthetic_batch(shape)]
        source = f'random image {shape[0]}x{shape[1]}'
    else:
        try:
            batches = dataset_batches(cfg, args.num_warmup + args.max_iter)
        except DatasetNotFoundError as e:
            sys.exit(f'error: {e}\n(or give --shape H W to time on random images)')
        source = f'{len(batches)} validation images of {args.config}'
    model = build_model(cfg)
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    if args.fuse_conv_bn:
        from mmengine.model.utils import fuse_conv_bn
        model = fuse_conv_bn(model)
    print(f'input: {source}, device: {args.device}, threads: {torch.get_num_threads()}')
    if args.shape:
        print(f'input shape: {shape}')
    fps_list, all_times = [], []
    for _ in range(args.repeat_num):
        print('==================================')
        times = time_test_step(model, batches, args.max_iter, args.num_warmup, args.device,
                               log_interval=args.log_interval)
        fps_list.append(len(times) / sum(times))
        all_times += times
    print('============== Done ==================')
    avg = sum(fps_list) / len(fps_list)
    if len(fps_list) > 1:
        print(f'Overall fps: {[round(f, 1) for f in fps_list]}[{avg:.1f}] img/s, '
              f'times per image: {[round(1000 / f, 1) for f in fps_list]}'
              f'[{1000 / avg:.1f}] ms/img')
        print(f'spread: fps {avg:.2f} +- {statistics.stdev(fps_list):.2f} (sd over '
              f'{len(fps_list)} runs); {spread(all_times)}')
    else:
        print(f'Overall fps: {avg:.1f} img/s, times per image: {1000 / avg:.1f} ms/img')
        print(f'spread: {spread(all_times)} over {len(all_times)} timed images '
              f'({args.num_warmup} warm-up images excluded)')


if __name__ == '__main__':
    main()
