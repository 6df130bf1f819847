"""SNIPER: pixels processed, chips per image, chip-generation speed, and (with --train) mAP.

    python benchmarks/sniper.py                       # cost tables only (seconds)
    python benchmarks/sniper.py --train [--models faster retina] [--epochs 2]
                                [--train-images 16] [--val-images 8] [--whole-scale 512]

Singh et al. (NeurIPS 2018, arXiv:1805.09300) train on 512 px chips at three scales and report
that this processes about 30 % more pixels than single-scale 800x1333 training (REFERENCE.md)
while seeing objects at the three scales a full image pyramid would. Reported here:

1. **Cost** on two size distributions: the synthetic training set (real annotations) and a
   *simulated* COCO-like set (no COCO on this machine: 640 px long side, 7.3 objects per image,
   sqrt(area) log-normal with COCO's 41 % small / 34 % medium / 24 % large split, uniform
   positions -- real COCO objects cluster, so real chip counts are lower). Per image: positive
   chips, pixels of SNIPER training (chips x K^2; with up to ``neg_per_image`` negative chips as
   an upper bound), vs single-scale training (COCO: 800x1333; synthetic: the native 1.0 scale,
   the analogue of COCO's middle scale) and vs the full 3-scale pyramid. Chip generation
   images/s (positives; and positives + negatives from 300 random proposals per scale).
2. **Training** (``--train``; CPU-hours on real settings, keep it small here): Faster R-CNN and
   RetinaNet (R18-FPN, synthetic configs in ``configs/sniper/``), trained with SNIPER chips vs on
   whole images at ``--whole-scale`` for the *same number of pixels* (the whole-image run gets
   as many epochs as it takes to match SNIPER's pixels), evaluated with mmdet's COCO metric:
   SNIPER with its 3-scale test (soft-NMS), whole images single scale.
"""
import argparse
import copy
import os.path as osp
import tempfile
import time

import numpy as np

import mmext  # noqa: F401
from mmext.datasets.sniper import SNIPER_COCO, image_chips, resolve_scale

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SYN_CFGS = {
    'faster': 'configs/sniper/faster-rcnn_r18_fpn_sniper_synthetic.py',
    'retina': 'configs/sniper/retinanet_r18_fpn_sniper_synthetic.py',
    'centernet': 'configs/sniper/centernet_spinenet-49s_sniper_synthetic.py',
}


# ----------------------------------------------------------------------------- data
def coco_like(n: int, seed: int = 0):
    """Simulated COCO-like images: list of (w, h, boxes)."""
    rng = np.random.RandomState(seed)
    # sqrt(area) ~ lognormal: P(<32) = 0.41, P(<96) = 0.76 (COCO's small/medium/large shares)
    sigma = (np.log(96) - np.log(32)) / (0.706 + 0.228)
    mu = np.log(32) + 0.228 * sigma
    out = []
    for _ in range(n):
        short = rng.choice([480, 480, 480, 427, 426, 360, 640])
        w, h = (640, short) if rng.rand() < 0.7 else (short, 640)
        k = 1 + rng.poisson(6.3)
        side = np.clip(np.exp(rng.normal(mu, sigma, k)), 2, 0.95 * min(w, h))
        ar = np.exp(rng.normal(0, 0.5, k))
        bw = np.minimum(side * np.sqrt(ar), w - 1)
        bh = np.minimum(side / np.sqrt(ar), h - 1)
        x = rng.uniform(0, w - bw)
        y = rng.uniform(0, h - bh)
        out.append((w, h, np.stack([x, y, x + bw, y + bh], 1)))
    return out


def synthetic_images(split='train'):
    import json
    from mmext.datasets.synthetic import ensure_generated
    root = osp.join(ROOT, 'data', 'synthetic')
    ensure_generated(root, [split])
    with open(osp.join(root, 'annotations', f'{split}.json')) as f:
        coco = json.load(f)
    boxes = {im['id']: [] for im in coco['images']}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        boxes[a['image_id']].append([x, y, x + w, y + h])
    return [(im['width'], im['height'], np.array(boxes[im['id']], float).reshape(-1, 4))
            for im in coco['images']]


def synthetic_sniper():
    from mmengine.config import Config
    ds = Config.fromfile(osp.join(ROOT, SYN_CFGS['faster'])).train_dataloader.dataset
    return dict(chip_size=ds.chip_size, stride=ds.stride, scales=tuple(ds.scales),
                valid_ranges=tuple(tuple(r) for r in ds.valid_ranges))


# ----------------------------------------------------------------------------- cost
def cost(images, sp, single_scale, neg_per_image=2, proposals=300, seed=0):
    """Cost figures of SNIPER on ``images`` with settings ``sp`` (one epoch).

    ``sp['stride']`` may be a ``(lo, hi)`` pair (drawn once for the epoch, as the official
    ``chip_worker.reset`` does); ties of the greedy cover are broken in a seeded random order.
    """
    k2 = sp['chip_size'] ** 2
    stride = sp['stride']
    rng = np.random.RandomState(seed)
    if not isinstance(stride, int):
        stride = int(rng.randint(*stride))
    geo = dict(chip_size=sp['chip_size'], stride=stride, scales=sp['scales'],
               valid_ranges=sp['valid_ranges'])
    t = time.perf_counter()
    chips = [image_chips(w, h, b, np.zeros(len(b), bool), rng=rng, **geo)['chips']
             for w, h, b in images]
    t_pos = time.perf_counter() - t
    n_chips = np.array([len(c) for c in chips])
    single = np.array([single_scale(w, h) for w, h, _ in images])
    pyramid = np.array([sum(resolve_scale(s, w, h, sp['chip_size']) ** 2 * w * h
                            for s in sp['scales']) for w, h, _ in images])
    # chip generation with negatives: random proposals stand in for an RPN's
    props = []
    for w, h, _ in images:
        side = np.exp(rng.uniform(np.log(8), np.log(min(w, h) / 2), proposals))
        x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
        p = np.stack([x, y, x + side, y + side, rng.uniform(0, 1, proposals)], 1)
        props.append([p] * len(sp['scales']))
    t = time.perf_counter()
    n_neg = []
    for (w, h, b), p in zip(images, props):
        c = image_chips(w, h, b, np.zeros(len(b), bool), proposals=p, rng=rng, **geo)
        n_neg.append(min(int(c['negative'].sum()), neg_per_image))
    t_neg = time.perf_counter() - t
    pos_px = n_chips * k2
    neg_px = (n_chips + np.array(n_neg)) * k2
    return dict(chips=n_chips.mean(), neg=np.mean(n_neg), pos_px=pos_px.mean(),
                neg_px=neg_px.mean(), single=single.mean(), pyramid=pyramid.mean(),
                ips_pos=len(images) / t_pos, ips_neg=len(images) / t_neg, stride=stride)


def coco_single(w, h):
    s = min(800 / min(w, h), 1333 / max(w, h))
    return s * s * w * h


def print_cost(rows):
    print('\n| data | chips/img (pos) | neg/img (<=2) | Mpx/img SNIPER pos | +neg | single-scale |'
          ' 3-scale pyramid | SNIPER/single | (+neg)/single | SNIPER/pyramid | '
          'chip gen img/s (pos) | (+neg) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for name, r in rows.items():
        print(f"| {name} | {r['chips']:.2f} | {r['neg']:.2f} | {r['pos_px'] / 1e6:.3f} | "
              f"{r['neg_px'] / 1e6:.3f} | {r['single'] / 1e6:.3f} | {r['pyramid'] / 1e6:.3f} | "
              f"{r['pos_px'] / r['single']:.2f}x | {r['neg_px'] / r['single']:.2f}x | "
              f"{r['pos_px'] / r['pyramid']:.2f}x | {r['ips_pos']:.0f} | {r['ips_neg']:.0f} |")
    print('(paper, COCO: SNIPER ~1.3x the pixels of single-scale 800x1333 training)')


# ----------------------------------------------------------------------------- training
def _cfg(kind, mode, args, work_dir, epochs):
    from mmengine.config import Config

    from mmext.utils.launch import adapt_cfg_to_device
    cfg = Config.fromfile(osp.join(ROOT, SYN_CFGS[kind]))
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs + 1
    cfg.param_scheduler[1].update(T_max=epochs, end=epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 20
    val_pipeline = copy.deepcopy(cfg.val_dataloader.dataset.pipeline)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    sniper = cfg.train_dataloader.dataset
    inner = sniper.dataset
    inner.indices = args.train_images
    if mode == 'whole':
        s = args.whole_scale
        inner.pipeline = [dict(type='LoadImageFromFile'),
                          dict(type='LoadAnnotations', with_bbox=True),
                          dict(type='Resize', scale=(s, s), keep_ratio=True),
                          dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]
        cfg.train_dataloader.dataset = inner
        cfg.custom_hooks = []
        # the config's own single-scale test pipeline (CenterNet's adds its border padding)
        test = cfg.test_dataloader.dataset
        test.pipeline = val_pipeline
        for t in test.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (s, s)
        cfg.test_cfg = dict(type='TestLoop')
    cfg.test_dataloader.dataset.indices = args.val_images
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    return adapt_cfg_to_device(cfg)


def _pixels_per_epoch(cfg, mode, args):
    from mmdet.registry import DATASETS
    ds = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    if mode == 'sniper':
        return len(ds) * ds.chip_size ** 2, len(ds)
    s = args.whole_scale
    px = 0
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        f = min(s / info['width'], s / info['height'])
        px += f * f * info['width'] * info['height']
    return px, len(ds)


def train_eval(kind, args, root):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmdet')  # the datasets are built here before any Runner
    out = {}
    sn_cfg = _cfg(kind, 'sniper', args, osp.join(root, kind, 'sniper'), args.epochs)
    sn_px, n_chips = _pixels_per_epoch(sn_cfg, 'sniper', args)
    wh_cfg = _cfg(kind, 'whole', args, osp.join(root, kind, 'whole'), 1)
    wh_px, n_img = _pixels_per_epoch(wh_cfg, 'whole', args)
    wh_epochs = max(1, int(round(args.epochs * sn_px / wh_px)))
    wh_cfg = _cfg(kind, 'whole', args, osp.join(root, kind, 'whole'), wh_epochs)
    for mode, cfg, epochs, px, items in [('SNIPER chips', sn_cfg, args.epochs, sn_px, n_chips),
                                         ('whole images', wh_cfg, wh_epochs, wh_px, n_img)]:
        t = time.perf_counter()
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = runner.test()
        out[mode] = dict(epochs=epochs, items=items, px=px * epochs, minutes=(
            time.perf_counter() - t) / 60, **{k: metrics.get(f'coco/bbox_{k}', 0.0) for k in (
                'mAP', 'mAP_50', 'mAP_s', 'mAP_m', 'mAP_l')})
    return out


def print_train(results, args):
    print(f'\nSynthetic set, {args.train_images} train / {args.val_images} val images, from '
          f'scratch on CPU; SNIPER {args.epochs} epochs, whole images at {args.whole_scale} px '
          'for the same pixels')
    print('| detector | training | epochs | items/epoch | Mpx processed | bbox mAP | AP50 | '
          'APs | APm | APl | minutes |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for kind, rows in results.items():
        for mode, r in rows.items():
            print(f"| {kind} | {mode} | {r['epochs']} | {r['items']} | {r['px'] / 1e6:.1f} | "
                  f"{r['mAP']:.3f} | {r['mAP_50']:.3f} | {r['mAP_s']:.3f} | {r['mAP_m']:.3f} | "
                  f"{r['mAP_l']:.3f} | {r['minutes']:.1f} |")
        a, b = rows['SNIPER chips'], rows['whole images']
        print(f'{kind}: SNIPER / whole-image pixels {a["px"] / b["px"]:.2f}x, APs '
              f'{a["mAP_s"]:.3f} vs {b["mAP_s"]:.3f}, mAP {a["mAP"]:.3f} vs {b["mAP"]:.3f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--coco-images', type=int, default=2000,
                        help='simulated COCO-like images for the cost table')
    parser.add_argument('--train', action='store_true', help='also train and evaluate')
    parser.add_argument('--models', nargs='+', default=['faster', 'retina'],
                        choices=sorted(SYN_CFGS))
    parser.add_argument('--epochs', type=int, default=2, help='SNIPER training epochs')
    parser.add_argument('--train-images', type=int, default=16)
    parser.add_argument('--val-images', type=int, default=8)
    parser.add_argument('--whole-scale', type=int, default=512,
                        help='whole-image training/test size (long side)')
    args = parser.parse_args()
    if args.epochs < 1 or args.train_images < 1 or args.val_images < 1:
        parser.error('--epochs, --train-images and --val-images must be >= 1')

    syn = synthetic_sniper()
    rows = {
        'COCO-like (simulated), paper settings': cost(coco_like(args.coco_images),
                                                      {k: SNIPER_COCO[k] for k in (
                                                          'chip_size', 'stride', 'scales',
                                                          'valid_ranges')}, coco_single),
        'synthetic train, synthetic config': cost(synthetic_images(), syn,
                                                  lambda w, h: float(w * h)),
    }
    print_cost(rows)
    print(f"synthetic config: chip {syn['chip_size']}, stride {syn['stride']}, scales "
          f"{syn['scales']}, ranges {syn['valid_ranges']}; single scale = native (1.0)")
    if args.train:
        results = {}
        with tempfile.TemporaryDirectory() as root:
            for kind in args.models:
                results[kind] = train_eval(kind, args, root)
        print_train(results, args)


if __name__ == '__main__':
    main()
