"""Does stacking refinement stages help CenterNet? 1, 2 and 3 stages trained the same way.

    python benchmarks/centernet_stacking.py [--epochs 6] [--scale 192] [--layouts random rows]

For each layout of the synthetic set ("random": objects anywhere; "rows": objects of one size in
lines, like characters of text -- where the seed's hypothesis expects refinement to help) it
trains CenterNet-R18 with 1, 2 and 3 stages for the same iterations (same seed, same data),
then reports for every stage's output: val bbox mAP / AP50 and the last training heatmap focal
loss; plus each model's FLOPs and CPU images/s at the training scale, and the cost of each extra
stage relative to one stage. All figures come from this one run.
"""
import argparse
import os.path as osp
import tempfile

from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner import Runner

import mmext  # noqa: F401
from mmext.analysis import inference_speed, model_complexity
from mmext.utils.launch import adapt_cfg_to_device

CFG = 'configs/centernet_stacked/centernet-stacked-{}s_r18_synthetic.py'


def make_cfg(stages, layout, args, work_dir):
    cfg = Config.fromfile(CFG.format(stages))
    suffix = '_rows' if layout == 'rows' else ''
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_interval = args.epochs + 1
    cfg.param_scheduler[1].update(T_max=args.epochs, end=args.epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 50
    cfg.randomness = dict(seed=0)
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val')):
        cfg[loader].dataset.split = split + suffix
        for t in cfg[loader].dataset.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (args.scale, args.scale)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = f'data/synthetic/annotations/val{suffix}.json'
    cfg.test_evaluator = cfg.val_evaluator
    return adapt_cfg_to_device(cfg)


def run(stages, layout, args, root):
    cfg = make_cfg(stages, layout, args, osp.join(root, f'{layout}_{stages}s'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = MessageHub.get_current_instance()
    rows = []
    for s in range(1, stages + 1):
        runner.model.bbox_head.test_stage = s
        metrics = runner.test()
        key = 'loss_center_heatmap' if stages == 1 else f'loss_center_heatmap_s{s}'
        # stage losses are logged weighted by 1/stages: undo it to compare stages
        hm = hub.get_scalar(f'train/{key}').current() * stages
        rows.append((s, metrics['coco/bbox_mAP'], metrics['coco/bbox_mAP_50'], hm))
    model = runner.model
    flops = model_complexity(model, (args.scale, args.scale))['flops'] / 1e9
    fps = inference_speed(model, (args.scale, args.scale), num_iters=args.speed_iters)
    return rows, flops, fps


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--scale', type=int, default=192)
    parser.add_argument('--layouts', nargs='+', default=['random', 'rows'],
                        choices=['random', 'rows'])
    parser.add_argument('--stages', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--speed-iters', type=int, default=10)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for layout in args.layouts:
            for n in args.stages:
                results[layout, n] = run(n, layout, args, root)
    print(f'\nCenterNet-R18 stacking, synthetic set, {args.epochs} epochs at {args.scale} px')
    print('| layout | stages | stage | bbox mAP | AP50 | heatmap loss | GFLOPs | img/s (CPU) |')
    print('|---|---|---|---|---|---|---|---|')
    for (layout, n), (rows, flops, fps) in results.items():
        for s, m, ap50, hm in rows:
            print(f'| {layout} | {n} | {s} | {m:.3f} | {ap50:.3f} | {hm:.3f} | {flops:.2f} | '
                  f'{fps:.1f} |')
    for layout in args.layouts:
        base = results.get((layout, 1))
        if base:
            for n in args.stages[1:]:
                _, flops, fps = results[layout, n]
                print(f'{layout}: {n} stages cost x{flops / base[1]:.2f} FLOPs, '
                      f'x{base[2] / fps:.2f} time per image vs 1 stage')


if __name__ == '__main__':
    main()
