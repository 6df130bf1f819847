"""Does a small detector learn more from a large teacher's soft targets, at equal compute?

    python benchmarks/distillation.py [--pair centernet|retina] [--seeds 0 1 2] [--epochs 16]
                                      [--teacher-epochs 20] [--scale 192] [--temperature 2]
                                      [--weight 5] [--teacher-ckpt PTH]
    # what was run on the 2-core CPU (README): the teacher and the hard-label students in two
    # processes, one thread each, then the KD and equal-time students, then the table
    python benchmarks/distillation.py --pair centernet --seeds 0 1 2 --hard-labels-only &
    python benchmarks/distillation.py --pair centernet --seeds 0          # teacher + seed 0
    python benchmarks/distillation.py --pair centernet --seeds 1 & python benchmarks/distillation.py --pair centernet --seeds 2
    python benchmarks/distillation.py --pair centernet --seeds 0 1 2      # the table, no training
    # the three-seed protocol, both pairs, sized for a GPU:
    python benchmarks/distillation.py --pair centernet --seeds 0 1 2 --scale 256 --epochs 30
    python benchmarks/distillation.py --pair retina --seeds 0 1 2 --scale 256 --epochs 60 --teacher-epochs 60

Hinton, Vinyals & Dean (arXiv:1503.02531): a student trained on the hard labels plus the
teacher's outputs softened at temperature T (soft term x T^2) generalises better than the same
student trained on the hard labels alone. Here, on the embedded synthetic shapes:

1. the teacher (``--pair centernet``: CenterNet-SpineNet-49S, the demo detector; ``retina``:
   RetinaNet-SpineNet-49S) is trained once for ``--teacher-epochs`` (or loaded from
   ``--teacher-ckpt``); its training time is reported, since distillation needs it;
2. per seed, three students (CenterNet- / RetinaNet-MixNet-S), each evaluated with the plain
   student config as tools/test.py would:
   * **hard labels**, ``--epochs``;
   * **+ KD**, the same seed, data and iterations (the KD configs in configs/distillation/);
   * **hard labels at equal wall time**: as many epochs as the distilled run's training time
     buys at the plain student's measured speed (rounded), i.e. what the teacher's forward costs;
3. the differences KD - hard labels at equal iterations and at equal time, paired by seed, with
   their 95 % t-intervals (``benchmarks/measure.py``).
"""
import argparse
import os
import os.path as osp
import time

import torch
from mmengine.config import Config
from mmengine.runner import Runner, load_checkpoint

import mmext  # noqa: F401
from mmext.registry import MODELS
from mmext.utils.launch import adapt_cfg_to_device

from measure import cached, mean_ci, paired_ci, run_key

# pair -> (teacher, student, student + KD) configs
PAIRS = {
    'centernet': ('configs/spinenet/centernet_spinenet-49s_synthetic.py',
                  'configs/distillation/centernet_mixnet-s_synthetic.py',
                  'configs/distillation/centernet_spinenet-49s_to_mixnet-s_synthetic.py'),
    'retina': ('configs/spinenet/retinanet_spinenet-49s_synthetic.py',
               'configs/distillation/retinanet_mixnet-s_synthetic_spinenet-anchors.py',
               'configs/distillation/retinanet_spinenet-49s_to_mixnet-s_synthetic.py'),
}


def make_cfg(path, epochs, args, work_dir, seed=0):
    cfg = adapt_cfg_to_device(Config.fromfile(path))
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=epochs + 1)
    for sched in cfg.param_scheduler:  # the epoch-based part of the schedule follows `epochs`
        if sched.get('by_epoch', True) and 'T_max' in sched:
            sched.update(T_max=epochs, end=epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs,
                                        max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 16
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    cfg.randomness = dict(seed=seed)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = args.workers
        cfg[loader].persistent_workers = args.workers > 0
        for t in cfg[loader].dataset.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (args.scale, args.scale)
    if args.train_images:
        cfg.train_dataloader.dataset.indices = args.train_images
    return cfg


def _ap(metrics):
    # mmdet's CocoMetric returns no keys when there is no detection at all (early training)
    return metrics.get('coco/bbox_mAP', 0.0), metrics.get('coco/bbox_mAP_50', 0.0)


def train(cfg):
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    ckpt = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    return runner, seconds, ckpt


def evaluate(cfg_path, ckpt, args, work_dir):
    """tools/test.py: the plain config of the model + the checkpoint."""
    cfg = make_cfg(cfg_path, 1, args, work_dir)
    cfg.load_from = ckpt
    return _ap(Runner.from_cfg(cfg).test())


def time_steps(runner, teacher_runner_model, repeats):
    """Seconds per train step of the runner's model and per teacher forward, same batch."""
    model, optim = runner.model, runner.optim_wrapper
    batch = next(iter(runner.train_dataloader))
    model.train()
    model.train_step(batch, optim)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        model.train_step(batch, optim)
    step = (time.perf_counter() - start) / repeats
    teacher = None
    if teacher_runner_model is not None:
        inputs = model.data_preprocessor(batch, True)['inputs']
        with torch.no_grad():
            teacher_runner_model.bbox_head(teacher_runner_model.extract_feat(inputs))
            start = time.perf_counter()
            for _ in range(repeats):
                teacher_runner_model.bbox_head(teacher_runner_model.extract_feat(inputs))
            teacher = (time.perf_counter() - start) / repeats
    return step, teacher


def params(model):
    return sum(p.numel() for p in model.parameters()) / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pair', choices=sorted(PAIRS), default='centernet')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--epochs', type=int, default=16, help='student epochs (equal iterations)')
    parser.add_argument('--teacher-epochs', type=int, default=20)
    parser.add_argument('--teacher-ckpt', default=None,
                        help='skip training the teacher and load this checkpoint')
    parser.add_argument('--scale', type=int, default=192)
    parser.add_argument('--temperature', type=float, default=2.0)
    parser.add_argument('--weight', type=float, default=None,
                        help='w of the soft term (default: the config\'s)')
    parser.add_argument('--train-images', type=int, default=0,
                        help='train on the first N images only (0: all 128)')
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--time-repeats', type=int, default=5)
    parser.add_argument('--work-dir', default='work_dirs/distillation/benchmark')
    parser.add_argument('--results-dir', default='work_dirs/benchmarks/distillation',
                        help='each run\'s figures are kept here (JSON) and reused: train the '
                        'teacher once, split the seeds over processes, then call again with every '
                        'seed for the table; "" keeps nothing')
    parser.add_argument('--hard-labels-only', action='store_true',
                        help='train only the hard-label students of --seeds (no teacher needed), '
                        'e.g. in a second process while the first trains the teacher; their '
                        'figures wait in --results-dir for the full call')
    args = parser.parse_args()
    if args.hard_labels_only and not args.results_dir:
        parser.error('--hard-labels-only keeps its runs in --results-dir; give one')
    teacher_cfg, student_cfg, kd_cfg = PAIRS[args.pair]
    root = osp.join(args.work_dir, args.pair)

    common = dict(pair=args.pair, scale=args.scale, train_images=args.train_images)
    store = args.results_dir or None

    def student(seed, epochs):
        """The hard-label student of ``seed`` trained for ``epochs``; the same run serves as
        "equal wall time" when the epochs match."""
        def train_it():
            d = osp.join(root, f'seed{seed}', f'student_{epochs}e')
            runner, secs, ckpt = train(make_cfg(student_cfg, epochs, args, d, seed))
            step, _ = time_steps(runner, None, args.time_repeats)
            return dict(epochs=epochs, secs=secs, step=step, params=params(runner.model),
                        ap=evaluate(student_cfg, ckpt, args, osp.join(d, 'test')))
        return cached(store, run_key(arm='student', seed=seed, epochs=epochs, **common),
                      train_it)

    if args.hard_labels_only:
        for seed in args.seeds:
            student(seed, args.epochs)
        return

    # 1. the teacher, once
    teacher_dir = osp.join(root, 'teacher')

    def train_teacher():
        if args.teacher_ckpt:
            ckpt, secs = args.teacher_ckpt, float('nan')
        else:
            _, secs, ckpt = train(make_cfg(teacher_cfg, args.teacher_epochs, args, teacher_dir))
        model = MODELS.build(adapt_cfg_to_device(Config.fromfile(teacher_cfg)).model)
        load_checkpoint(model, ckpt, map_location='cpu', strict=True)
        return dict(params=params(model), secs=secs, ckpt=osp.abspath(ckpt),
                    ap=evaluate(teacher_cfg, ckpt, args, osp.join(teacher_dir, 'test')))

    teacher = cached(store, run_key(arm='teacher', epochs=args.teacher_epochs,
                                    ckpt=osp.basename(args.teacher_ckpt or ''), **common),
                     train_teacher)
    if not osp.exists(teacher['ckpt']):
        raise FileNotFoundError(
            f'the teacher checkpoint {teacher["ckpt"]} recorded in --results-dir {store} is gone; '
            'delete the teacher entry there to train it again')

    # 2. per seed: hard labels, + KD (equal iterations), hard labels at equal wall time
    def distilled(seed, d):
        cfg = make_cfg(kd_cfg, args.epochs, args, osp.join(d, 'kd'), seed)
        cfg.model.teacher_ckpt = teacher['ckpt']
        cfg.model.distill_loss.temperature = args.temperature
        cfg.model.distill_loss.loss_weight = weight
        runner, secs, ckpt = train(cfg)
        step, teacher_fwd = time_steps(runner, runner.model.teacher, args.time_repeats)
        return dict(epochs=args.epochs, secs=secs, step=step, teacher_fwd=teacher_fwd,
                    ap=evaluate(student_cfg, ckpt, args, osp.join(d, 'kd', 'test')))

    weight = args.weight
    if weight is None:
        weight = Config.fromfile(kd_cfg).model.distill_loss.loss_weight
    runs = {}
    for seed in args.seeds:
        runs[seed] = r = {}
        d = osp.join(root, f'seed{seed}')
        r['student'] = student(seed, args.epochs)
        r['kd'] = cached(store, run_key(arm='kd', T=args.temperature, w=weight, seed=seed,
                                        epochs=args.epochs, teacher_epochs=args.teacher_epochs,
                                        **common),
                         lambda: distilled(seed, d))
        eq_epochs = max(1, round(args.epochs * r['kd']['secs'] / r['student']['secs']))
        r['eqtime'] = student(seed, eq_epochs)
    report(args, teacher, runs, weight)


def report(args, teacher, runs, weight):
    seeds = sorted(runs)
    print(f'\nKnowledge distillation, {args.pair} pair, synthetic set, {args.scale} px, from '
          f'scratch, {os.environ.get("OMP_NUM_THREADS", "?")} CPU thread(s) (or the GPU), '
          f'T={args.temperature:g}, w={weight:g}, seeds {seeds}')
    print(f'teacher: {teacher["params"]:.2f} M params, {args.teacher_epochs} epochs, trained in '
          f'{teacher["secs"]:.0f} s (paid once, not in the students\' times), bbox mAP '
          f'{teacher["ap"][0]:.3f} (AP50 {teacher["ap"][1]:.3f})')
    print('| seed | student | epochs | train time (s) | bbox mAP | AP50 |')
    print('|---|---|---|---|---|---|')
    names = dict(student='hard labels', kd='+ KD (equal iterations)',
                 eqtime='hard labels, equal wall time')
    for seed in seeds:
        for key, label in names.items():
            r = runs[seed][key]
            print(f'| {seed} | {label} | {r["epochs"]} | {r["secs"]:.0f} | {r["ap"][0]:.3f} | '
                  f'{r["ap"][1]:.3f} |')
    ap = {k: [runs[s][k]['ap'][0] for s in seeds] for k in names}
    for k, label in names.items():
        print(f'bbox mAP, {label}: {mean_ci(ap[k])}')
    print(f'KD - hard labels at equal iterations (paired by seed): {paired_ci(ap["kd"], ap["student"])}')
    print(f'KD - hard labels at equal wall time (paired by seed): {paired_ci(ap["kd"], ap["eqtime"])}')
    fwd = [runs[s]['kd']['teacher_fwd'] / runs[s]['student']['step'] for s in seeds]
    slow = [runs[s]['kd']['step'] / runs[s]['student']['step'] for s in seeds]
    print(f'teacher forward / plain student step: {mean_ci(fwd)}; distilled step / plain step: '
          f'{mean_ci(slow)}')


if __name__ == '__main__':
    main()
