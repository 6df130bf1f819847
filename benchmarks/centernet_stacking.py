"""Does CPM-style stacking refine CenterNet's heatmap? 1-3 stages, small vs CPM-size refinement.

    python benchmarks/centernet_stacking.py [--epochs 20] [--scale 256] [--seeds 0 1 2]
        [--layouts random rows] [--stages 1 2 3] [--refine small cpm]
    # what was run on the 2-core CPU (9 runs, about 75 min on one core; README table):
    python benchmarks/centernet_stacking.py --epochs 12 --scale 256 --seeds 0 1 2 \\
        --layouts rows --stages 1 2 --refine small cpm-dilated
    # the whole grid, for a GPU (70 runs of the demo detector):
    python benchmarks/centernet_stacking.py --epochs 20 --scale 256 --seeds 0 1 2 3 4 \\
        --refine small cpm cpm-dilated
    # and whether stage 1 lost because the averaged stage losses halve its weight:
    python benchmarks/centernet_stacking.py --epochs 20 --scale 256 --seeds 0 1 2 3 4 \\
        --layouts rows --stages 1 2 --refine small --stage-weighting sum

The source article's argument: objects in a layout (characters in lines of text) inform each
other's positions, so later stages that see the previous heatmap with a large receptive field,
as Convolutional Pose Machines (Wei et al., CVPR 2016, arXiv:1602.00134) do, should place them
better. Stage 1 is the demo detector (CenterNet on SpineNet-49S level 3,
``configs/spinenet/centernet_spinenet-49s_synthetic.py``, which learns in CPU minutes); later
stages are ``CenterNetStackedHead`` refinement blocks:

* ``small``: two 3x3 convs at the head's width (about 4 feature pixels of context per stage);
* ``cpm``: three 11x11 convs at CPM's 128 channels (a CPM stage's context, about 30 pixels);
* ``cpm-dilated``: three 3x3 convs at dilation 5 and 128 channels: the same 30 pixels of context
  and width at 1/13 of ``cpm``'s multiply-adds (the cell that fits a CPU; ``cpm`` is for a GPU).

Every cell (layout x stages x refinement) is trained for the same iterations with each seed;
reported per cell: bbox mAP, AP50, APs of every stage's output and its last heatmap focal loss,
mean and 95 % t-interval over seeds, and the paired difference of the last stage vs 1 stage
(same seed) with its interval (``benchmarks/measure.py``). FLOPs per model at the training scale.
"""
import argparse
import os.path as osp
import tempfile

from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner import Runner

import mmext  # noqa: F401
from mmext.analysis import model_complexity
from mmext.utils.launch import adapt_cfg_to_device
from measure import cached, mean_ci, paired_ci, run_key

BASE = 'configs/spinenet/centernet_spinenet-49s_synthetic.py'
# refinement block per name: CenterNetStackedHead arguments
REFINE = {
    'small': dict(refine_convs=2, refine_kernel=3, refine_channels=None),
    'cpm': dict(refine_convs=3, refine_kernel=11, refine_channels=128),
    # CPM's width and context (each 3x3 conv at dilation 5 spans 11 pixels, as an 11x11 does)
    # at 1/13 of its multiply-adds: the CPU-sized stand-in for 'cpm'
    'cpm-dilated': dict(refine_convs=3, refine_kernel=3, refine_dilation=5, refine_channels=128),
}


def make_cfg(stages, refine, layout, seed, args, work_dir):
    cfg = Config.fromfile(BASE)
    suffix = '_rows' if layout == 'rows' else ''
    cfg.work_dir = work_dir
    cfg.model.bbox_head.update(type='CenterNetStackedHead', num_stages=stages,
                               refine_inputs=('heatmap', ))
    if stages > 1:
        cfg.model.bbox_head.update(REFINE[refine])
        if args.stage_weighting == 'sum':  # every stage with a 1-stage model's loss weight
            cfg.model.bbox_head.stage_loss_weights = [1.0] * stages
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_interval = args.epochs + 1
    for sched in cfg.param_scheduler:
        if sched.get('by_epoch', True) and 'T_max' in sched:
            sched.update(T_max=args.epochs, end=args.epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 50
    cfg.randomness = dict(seed=seed)
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val')):
        cfg[loader].dataset.split = split + suffix
        cfg[loader].num_workers = args.workers
        cfg[loader].persistent_workers = args.workers > 0
        for t in cfg[loader].dataset.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (args.scale, args.scale)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = f'data/synthetic/annotations/val{suffix}.json'
    cfg.test_evaluator = cfg.val_evaluator
    return adapt_cfg_to_device(cfg)


def run(stages, refine, layout, seed, args, root):
    """Per-stage (mAP, AP50, APs, heatmap loss) of one trained model, and its GFLOPs."""
    cfg = make_cfg(stages, refine, layout, seed, args,
                   osp.join(root, f'{layout}_{stages}s_{refine}_seed{seed}'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = MessageHub.get_current_instance()
    rows = []
    for s in range(1, stages + 1):
        runner.model.bbox_head.test_stage = s
        m = runner.test()
        key = 'loss_center_heatmap' if stages == 1 else f'loss_center_heatmap_s{s}'
        # mean over the last epoch; stage losses are logged times their stage weight: undo it
        weight = runner.model.bbox_head.stage_loss_weights[s - 1] if stages > 1 else 1.0
        hm = hub.get_scalar(f'train/{key}').mean(len(runner.train_dataloader)) / weight
        rows.append((m.get('coco/bbox_mAP', 0.0), m.get('coco/bbox_mAP_50', 0.0),
                     m.get('coco/bbox_mAP_s', 0.0), hm))
    side = -(-args.scale // 128) * 128  # the batch is padded to SpineNet's multiple of 128
    flops = model_complexity(runner.model, (side, side))['flops'] / 1e9
    return rows, flops


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--scale', type=int, default=256)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--layouts', nargs='+', default=['random', 'rows'],
                        choices=['random', 'rows'])
    parser.add_argument('--stages', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--refine', nargs='+', default=['small', 'cpm'], choices=sorted(REFINE))
    parser.add_argument('--stage-weighting', choices=['mean', 'sum'], default='mean',
                        help='stage losses averaged (the head\'s default, as Hourglass-104 '
                        'CenterNet) or summed (stage 1 keeps the 1-stage model\'s weight)')
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--results-dir', default='work_dirs/benchmarks/centernet_stacking',
                        help='each run\'s figures are kept here (JSON) and reused: split the grid '
                        'over processes, then call again with the whole grid for the table; '
                        '"" keeps nothing')
    args = parser.parse_args()
    if 1 not in args.stages:
        parser.error('--stages must include 1: every cell is compared with one stage')
    cells = [(layout, n, r) for layout in args.layouts for n in args.stages
             for r in (args.refine if n > 1 else ['-'])]
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for layout, n, r in cells:
            for seed in args.seeds:
                weighting = args.stage_weighting if n > 1 and args.stage_weighting != 'mean' \
                    else None  # 1 stage has nothing to weight; 'mean' keeps the older keys
                key = run_key(layout=layout, stages=n, refine=r, seed=seed,
                              epochs=args.epochs, scale=args.scale, weighting=weighting)
                results[layout, n, r, seed] = cached(
                    args.results_dir, key, lambda: run(n, r, layout, seed, args, root))
    report(args, cells, results)


def report(args, cells, results):
    print(f'\nCenterNet-SpineNet-49S stacking, synthetic set, {args.epochs} epochs at '
          f'{args.scale} px, seeds {args.seeds}; mean [95 % interval] over seeds')
    print('| layout | stages | refine | stage | bbox mAP | AP50 | APs | heatmap loss | GFLOPs |')
    print('|---|---|---|---|---|---|---|---|---|')
    for layout, n, r in cells:
        per_seed = [results[layout, n, r, s] for s in args.seeds]
        for stage in range(n):
            cols = [mean_ci([rows[stage][k] for rows, _ in per_seed]) for k in range(4)]
            flops = per_seed[0][1]
            print(f'| {layout} | {n} | {r} | {stage + 1} | ' + ' | '.join(
                f'{c.mean:.3f} [{c.low:.3f}, {c.high:.3f}]' for c in cols) + f' | {flops:.2f} |')
    print('\nLast stage minus 1 stage, bbox mAP, paired by seed:')
    for layout, n, r in cells:
        if n == 1:
            continue
        last = [results[layout, n, r, s][0][-1][0] for s in args.seeds]
        one = [results[layout, 1, '-', s][0][0][0] for s in args.seeds]
        d = paired_ci(last, one)
        verdict = ('helps' if d.low > 0 else 'hurts' if d.high < 0 else
                   'no difference resolved')
        print(f'  {layout}, {n} stages ({r}): {d}  -> {verdict}')


if __name__ == '__main__':
    main()
