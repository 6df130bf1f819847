"""Does RepNet's critic (and its KCS path) help 2D -> 3D lifting? All variants trained in one run.

    python benchmarks/repnet.py [--epochs 15] [--width 256] [--train-poses N] [--seed 0]

Wandt & Rosenhahn (CVPR 2019, arXiv:1902.09868) train the lifter with only 2D poses, a
reprojection loss, a camera loss and a WGAN critic that compares the generated 3D poses with an
*unpaired* pool of real 3D poses; the critic's KCS path (Psi = B^T B) is there to enforce bone
lengths and joint angles (symmetric bones in particular). On the synthetic set
(``mmext/pose/synthetic_poses3d.py``: 20k training 2D poses, 20k unpaired pool poses of other
subjects, 2000 paired validation poses, 16 joints) this script trains, with the same seed,
data, schedule and network sizes:

* **RepNet**: critic with plain + KCS paths (the paper's model);
* **RepNet, critic without KCS**: plain path only;
* **no critic**: the same generator/camera network with L_rep + L_cam only (adv weight 0);

and compares them with a **mean-depth baseline** that needs no training: the 2D pose, scaled
to the pool's average size, with every joint at the pool's mean root-relative depth.

Reported on the validation split with MMPose's ``MPJPE`` metric (modes ``mpjpe`` and
``p-mpjpe``, after adding the ground-truth root as MMPose's lifters do; millimetres), the
left/right bone-length symmetry error (mm; the synthetic skeletons are exactly symmetric), and
the training time on this machine. Ratios are against the mean-depth baseline.
"""
import argparse
import os.path as osp
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmext  # noqa: F401
from mmext.pose.bone_symmetry import bone_symmetry
from mmext.pose.kcs import symmetric_bone_pairs
from mmext.pose.repnet import normalize_2d
from mmext.pose.synthetic_poses3d import ensure_generated
from mmext.utils.launch import adapt_cfg_to_device
from mmpose.evaluation.functional import keypoint_mpjpe

CFG = 'configs/repnet/repnet_fc256_b64-15e_synthetic-16j.py'
IDX16 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]
# name -> (short name for --only and the work dir, model settings that differ)
VARIANTS = {
    'RepNet (critic: plain + KCS)': ('repnet', dict()),
    'RepNet, critic without KCS': ('nokcs', dict(critic=dict(use_kcs=False))),
    'no critic (L_rep + L_cam)': ('nocritic', dict(adv_weight=0.0)),
}


def make_cfg(args, model_update, work_dir):
    cfg = Config.fromfile(CFG)
    cfg.work_dir = work_dir
    cfg.merge_from_dict(dict(model=model_update))
    cfg.model.backbone.width = args.width
    cfg.model.critic.kcs_width = args.width
    cfg.model.pose3d_pool.data_root = args.data_root
    cfg.train_cfg = dict(by_epoch=True, max_epochs=args.epochs, val_interval=args.epochs + 1)
    cfg.param_scheduler = [dict(type='MultiStepLR', milestones=[max(1, args.epochs * 2 // 3)],
                                gamma=0.1, by_epoch=True, end=args.epochs)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 100
    cfg.randomness = dict(seed=args.seed)
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    if args.train_poses:
        cfg.train_dataloader.dataset.indices = args.train_poses
    # evaluated once after training by runner.test(): no validation loop during training
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return adapt_cfg_to_device(cfg)


def train_and_test(args, short, update):
    work_dir = osp.join('work_dirs/repnet/benchmark', short)
    runner = Runner.from_cfg(make_cfg(args, update, work_dir))
    t0 = time.time()
    runner.train()
    train_s = time.time() - t0
    metrics = runner.test()
    return dict(mpjpe=metrics['MPJPE'], pa=metrics['P-MPJPE'],
                sym=metrics['symmetry_error'], sym_rel=metrics['symmetry_error_rel'],
                train_s=train_s)


def mean_depth_baseline(args):
    """2D scaled to the pool's mean size, every joint at the pool's mean relative depth."""
    paths = ensure_generated(args.data_root, ['val', 'pool'])
    pool = np.load(paths['pool'])['S'][:, IDX16, :3]
    pool = pool - pool[:, :1]
    val = np.load(paths['val'])
    gt = val['S'][:, IDX16, :3]
    w = normalize_2d(torch.tensor(val['part'][:, IDX16, :2])).numpy()
    xy_size = np.sqrt((pool[..., :2] ** 2).sum(-1).mean(-1)).mean()
    pred = np.concatenate([w * xy_size, np.broadcast_to(pool[..., 2:].mean(0), w[..., :1].shape)],
                          -1) + gt[:, :1]
    mask = np.ones(gt.shape[:2], bool)
    err, rel = bone_symmetry(pred, np.asarray(symmetric_bone_pairs(16)))
    return dict(mpjpe=keypoint_mpjpe(pred, gt, mask, 'none'),
                pa=keypoint_mpjpe(pred, gt, mask, 'procrustes'),
                sym=err.mean(), sym_rel=rel.mean(), train_s=0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=15)
    parser.add_argument('--width', type=int, default=256)
    parser.add_argument('--train-poses', type=int, default=0, help='0 = all 20000')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-root', default='data/synthetic_poses3d/')
    parser.add_argument('--only', nargs='*', help='subset of variants: repnet nokcs nocritic')
    args = parser.parse_args()

    rows = {'mean-depth baseline (no training)': mean_depth_baseline(args)}
    for name, (short, update) in VARIANTS.items():
        if args.only and short not in args.only:
            continue
        rows[name] = train_and_test(args, short, update)

    base = rows['mean-depth baseline (no training)']
    print(f'\nRepNet on the synthetic 3D pose set: {args.epochs} epochs, width {args.width}, '
          f'seed {args.seed}, {torch.get_num_threads()} thread(s); val = 2000 poses, 16 joints')
    head = ('| method | MPJPE (mm) | PA-MPJPE (mm) | MPJPE / base | PA-MPJPE / base '
            '| symmetry err (mm) | symmetry err (rel.) | train time (s) |')
    print(head)
    print('|' + '---|' * head.count(' | ') + '---|')
    for name, r in rows.items():
        print(f"| {name} | {1000 * r['mpjpe']:.1f} | {1000 * r['pa']:.1f} | "
              f"{r['mpjpe'] / base['mpjpe']:.3f} | {r['pa'] / base['pa']:.3f} | "
              f"{1000 * r['sym']:.1f} | {r['sym_rel']:.3f} | {r['train_s']:.0f} |")


if __name__ == '__main__':
    main()
