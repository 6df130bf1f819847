"""Inference throughput of a config's model on CPU or GPU (mmdet's benchmark.py is GPU-only).

    python tools/analysis_tools/benchmark.py CONFIG [--checkpoint CKPT] [--shape H W]
        [--device cpu|cuda] [--max-iter N] [--num-warmup N] [--repeat-num N] [--log-interval N]

With ``--shape`` the model runs on random images of that size and needs no dataset; without it
the shape is the first validation image's padded shape. Output follows mmdet's benchmark
("Done image [..], fps: .. img/s" and "Overall fps: .. img/s").
"""
import argparse

import torch
from mmengine.config import Config, DictAction

import mmext  # noqa: F401
from mmext.analysis import build_model, inference_speed
from mmext.utils.launch import adapt_cfg_to_device


def parse_args():
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
    return parser.parse_args()


def shape_from_dataset(cfg):
    from mmengine.runner import Runner
    from mmext.utils.launch import check_data_paths
    check_data_paths(cfg, phases=('val', ))
    cfg.val_dataloader.batch_size = 1
    batch = next(iter(Runner.build_dataloader(cfg.val_dataloader)))
    return tuple(batch['inputs'][0].shape[-2:])


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    adapt_cfg_to_device(cfg)
    if args.shape:
        if len(args.shape) not in (1, 2):
            raise SystemExit(f'error: --shape takes H W or one side, got {args.shape}')
        shape = tuple(args.shape * 2 if len(args.shape) == 1 else args.shape)
    else:
        shape = shape_from_dataset(cfg)
    model = build_model(cfg)
    if args.checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    if args.fuse_conv_bn:
        from mmengine.model.utils import fuse_conv_bn
        model = fuse_conv_bn(model)
    print(f'input shape: {shape}, device: {args.device}')
    fps_list = []
    for _ in range(args.repeat_num):
        print('==================================')
        fps_list.append(round(inference_speed(
            model, shape, args.max_iter, args.num_warmup, args.device,
            log_interval=args.log_interval), 1))
    print('============== Done ==================')
    avg = sum(fps_list) / len(fps_list)
    if len(fps_list) > 1:
        print(f'Overall fps: {fps_list}[{avg:.1f}] img/s, '
              f'times per image: {[round(1000 / f, 1) for f in fps_list]}'
              f'[{1000 / avg:.1f}] ms/img')
    else:
        print(f'Overall fps: {avg:.1f} img/s, times per image: {1000 / avg:.1f} ms/img')


if __name__ == '__main__':
    main()
