"""Does a small detector learn more from a large teacher's soft targets? One run, synthetic set.

    python benchmarks/distillation.py [--epochs 20] [--teacher-epochs 20] [--scale 256]
                                      [--temperature 2] [--weight 5] [--teacher-ckpt PTH]

Hinton, Vinyals & Dean (arXiv:1503.02531): a student trained on the hard labels plus the
teacher's outputs softened at temperature T (soft term x T^2) generalises better than the same
student trained on the hard labels alone. Here, in one run on the embedded synthetic shapes:

1. the teacher, CenterNet-SpineNet-49S (``configs/spinenet/centernet_spinenet-49s_synthetic.py``,
   the demo detector), is trained for ``--teacher-epochs`` (or loaded from ``--teacher-ckpt``);
2. the student, CenterNet-MixNet-S (``configs/distillation/centernet_mixnet-s_synthetic.py``), is
   trained for ``--epochs`` on the hard labels only;
3. the same student, same seed, data and iterations, is trained with distillation
   (``configs/distillation/centernet_spinenet-49s_to_mixnet-s_synthetic.py``: + w T^2 binary KL
   on the class heatmaps) and evaluated with the plain student config, as tools/test.py would.

Reported: COCO bbox mAP / AP50 of the three, the training wall time of both students and the
teacher's forward cost per iteration (a timed train step of each student and a timed teacher
forward on the same batch). The CenterNet pair is used because it learns in CPU minutes; the
RetinaNet pair (``configs/distillation/retinanet_spinenet-49s_to_mixnet-s_synthetic.py``) reaches
mAP 0.000 on a CPU from scratch (README, known limitations).
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

TEACHER = 'configs/spinenet/centernet_spinenet-49s_synthetic.py'
STUDENT = 'configs/distillation/centernet_mixnet-s_synthetic.py'
DISTILL = 'configs/distillation/centernet_spinenet-49s_to_mixnet-s_synthetic.py'


def make_cfg(path, epochs, args, work_dir):
    cfg = adapt_cfg_to_device(Config.fromfile(path))
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=epochs + 1)
    cfg.param_scheduler[1].update(T_max=epochs, end=epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs,
                                        max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 16
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    cfg.randomness = dict(seed=0)
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
    parser.add_argument('--epochs', type=int, default=20, help='student epochs (both runs)')
    parser.add_argument('--teacher-epochs', type=int, default=20)
    parser.add_argument('--teacher-ckpt', default=None,
                        help='skip training the teacher and load this checkpoint')
    parser.add_argument('--scale', type=int, default=256)
    parser.add_argument('--temperature', type=float, default=2.0)
    parser.add_argument('--weight', type=float, default=None,
                        help='w of the soft term (default: the config\'s)')
    parser.add_argument('--train-images', type=int, default=0,
                        help='train on the first N images only (0: all 128)')
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--time-repeats', type=int, default=5)
    parser.add_argument('--work-dir', default='work_dirs/distillation/benchmark')
    args = parser.parse_args()
    rows = {}

    # 1. teacher
    teacher_dir = osp.join(args.work_dir, 'teacher')
    if args.teacher_ckpt:
        teacher_ckpt, teacher_secs = args.teacher_ckpt, float('nan')
    else:
        _, teacher_secs, teacher_ckpt = train(make_cfg(TEACHER, args.teacher_epochs, args,
                                                       teacher_dir))
    teacher_model = MODELS.build(adapt_cfg_to_device(Config.fromfile(TEACHER)).model)
    load_checkpoint(teacher_model, teacher_ckpt, map_location='cpu', strict=True)
    teacher_model.eval()
    rows['teacher CenterNet-SpineNet-49S'] = dict(
        params=params(teacher_model), epochs=args.teacher_epochs if not args.teacher_ckpt
        else 'ckpt', secs=teacher_secs,
        ap=evaluate(TEACHER, teacher_ckpt, args, osp.join(teacher_dir, 'test')))

    # 2. student, hard labels only
    student_dir = osp.join(args.work_dir, 'student')
    runner, secs, ckpt = train(make_cfg(STUDENT, args.epochs, args, student_dir))
    step, _ = time_steps(runner, None, args.time_repeats)
    rows['student CenterNet-MixNet-S'] = dict(
        params=params(runner.model), epochs=args.epochs, secs=secs, step=step,
        ap=evaluate(STUDENT, ckpt, args, osp.join(student_dir, 'test')))

    # 3. the same student with distillation, evaluated with the plain student config
    kd_dir = osp.join(args.work_dir, 'distilled')
    cfg = make_cfg(DISTILL, args.epochs, args, kd_dir)
    cfg.model.teacher_ckpt = osp.abspath(teacher_ckpt)
    cfg.model.distill_loss.temperature = args.temperature
    if args.weight is not None:
        cfg.model.distill_loss.loss_weight = args.weight
    weight = cfg.model.distill_loss.loss_weight
    runner, secs, ckpt = train(cfg)
    step, teacher_fwd = time_steps(runner, runner.model.teacher, args.time_repeats)
    rows[f'student + KD (T={args.temperature:g}, w={weight:g})'] = dict(
        params=params(runner.model), epochs=args.epochs, secs=secs, step=step,
        teacher_fwd=teacher_fwd, ap=evaluate(STUDENT, ckpt, args, osp.join(kd_dir, 'test')))

    base = rows['student CenterNet-MixNet-S']
    print(f'\nKnowledge distillation, CenterNet on the synthetic set, {args.scale} px, from '
          f'scratch, CPU ({os.environ.get("OMP_NUM_THREADS", "?")} thread(s)); students: same '
          f'seed, data and {args.epochs} epochs')
    print('| model | params (M) | epochs | train time (s) | time vs student | s / train step '
          '| bbox mAP | AP50 | mAP vs student |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name, r in rows.items():
        ratio = f'{r["secs"] / base["secs"]:.2f}x' if r.get('step') else '-'
        step = f'{r["step"]:.3f}' if r.get('step') else '-'
        gain = (f'{r["ap"][0] - base["ap"][0]:+.3f}' if name != 'teacher CenterNet-SpineNet-49S'
                else '-')
        print(f'| {name} | {r["params"]:.2f} | {r["epochs"]} | {r["secs"]:.0f} | {ratio} '
              f'| {step} | {r["ap"][0]:.3f} | {r["ap"][1]:.3f} | {gain} |')
    kd = rows[f'student + KD (T={args.temperature:g}, w={weight:g})']
    print(f'teacher forward (no grad) on a training batch: {kd["teacher_fwd"]:.3f} s = '
          f'{100 * kd["teacher_fwd"] / base["step"]:.0f} % of a plain student train step '
          f'({base["step"]:.3f} s); distilled train step {kd["step"]:.3f} s = '
          f'{kd["step"] / base["step"]:.2f}x')


if __name__ == '__main__':
    main()
