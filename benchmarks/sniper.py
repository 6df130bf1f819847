"""SNIPER: pixels processed, chips per image, chip-generation speed, and (with --train) mAP.

    python benchmarks/sniper.py                       # cost tables only (seconds)
    python benchmarks/sniper.py --train [--models faster retina] [--epochs 2]
                                [--train-images 16] [--val-images 8] [--whole-scale 512]
    python benchmarks/sniper.py --tiled [--tiled-images 3] [--tiled-stride 448] [--tiled-net]
    python benchmarks/sniper.py --chip-scaling [--boxes 10 500 5000] [--processes 10]

Singh et al. (NeurIPS 2018, arXiv:1805.09300) train on 512 px chips at three scales and report
that this processes about 30 % more pixels than single-scale 800x1333 training (the paper's
section on SNIPER's training cost) while seeing objects at the three scales a full image pyramid
would. Reported here:

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
3. **Tiled inference** (``--tiled``): mmext's tiled SNIPER inference vs sahi's sliced
   prediction (``pip install sahi==0.12.8``; benchmark only, skipped when missing), same
   detector and same 512 px tiles, on synthetic 4000x3000 images with small objects: seconds per
   image and COCO AP. The detector is exact inside a tile (connected components), so AP measures
   tiling and merging only; ``--tiled-net`` adds a Faster R-CNN R18 forward per tile for timing.

4. **Chip generation scaling** (``--chip-scaling``): mmext's greedy cover (``greedy_chips``,
   one matrix product per chosen chip) vs a straightforward per-box reference (Python loops:
   the chips containing each box, then the greedy count per step) on the same 1333x800 images
   with 10, 500 and 5000 boxes, outputs checked equal; images/s and the ratio with its 95 %
   interval (``benchmarks/measure.py``). The reference's own speed varies by up to 1.8x from
   one process to the next on this VM, so the interval is taken over ``--processes`` fresh
   processes (default 10; each runs the interleaved rounds), not over one process's rounds.

Like for like: the paper's ~1.3x counts SNIPER's chips (positive and negative) against
single-scale 800x1333 training on real COCO. The comparable figure here is the COCO-like
simulation with the paper settings *with negatives*; the synthetic rows use a different recipe
(finest scale 2.0, single scale = its native size, the analogue of the middle scale).
"""
import argparse
import copy
import os.path as osp
import tempfile
import time

import numpy as np

import mmext  # noqa: F401
from mmext.datasets.sniper import (SNIPER_COCO, chip_starts, clip_boxes, greedy_chips,
                                   image_chips, resolve_scale, usable)

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
    print('(paper, real COCO: SNIPER chips incl. negatives ~1.3x the pixels of single-scale '
          '800x1333 training; compare the COCO-like "(+neg)/single" column)')


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
        cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True)
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


# ----------------------------------------------------------------------------- tiled vs sahi
def large_images(n=3, w=4000, h=3000, objects=200, seed=0, gap=3):
    """Synthetic large images with small objects: bright rectangles (6-48 px) on dark noise,
    at least ``gap`` px apart."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        img = rng.randint(0, 60, (h, w, 3)).astype(np.uint8)
        boxes = []
        while len(boxes) < objects:
            bw, bh = (int(v) for v in rng.randint(6, 48, 2))
            x, y = int(rng.randint(0, w - bw)), int(rng.randint(0, h - bh))
            b = [x, y, x + bw, y + bh]
            if all(b[0] > o[2] + gap or b[2] < o[0] - gap or b[1] > o[3] + gap
                   or b[3] < o[1] - gap for o in boxes):
                boxes.append(b)
                img[y:y + bh, x:x + bw] = rng.randint(180, 255)
        out.append((img, np.array(boxes, float)))
    return out


class ComponentDetector:
    """The same 'detector' for both tilers: connected components of bright pixels (a perfect
    detector inside each tile, so AP measures only tiling and merging). Score: mean
    brightness / 255. With ``net`` it also runs that network on each tile (for timing)."""

    def __init__(self, net=None):
        self.net = net

    def boxes(self, img):
        import cv2
        mask = (img[..., 0] > 128).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        b = stats[1:, :4].astype(np.float32)
        b[:, 2:] += b[:, :2]
        return b, np.full(len(b), 0.9, np.float32)

    def test_step(self, data):  # mmdet detector interface, for sniper_tiled_inference
        import torch
        from mmengine.structures import InstanceData
        if self.net is not None:
            self.net.test_step(data)
        out = []
        for inp, sample in zip(data['inputs'], data['data_samples']):
            b, sc = self.boxes(inp.permute(1, 2, 0).numpy())
            s = sample.clone()
            s.pred_instances = InstanceData(bboxes=torch.from_numpy(b), scores=torch.from_numpy(
                sc), labels=torch.zeros(len(b), dtype=torch.long))
            out.append(s)
        return out


def sahi_model(detector):
    """``detector`` as a sahi DetectionModel (sahi is a benchmark-only dependency)."""
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction

    class Wrapped(DetectionModel):
        def load_model(self):
            self.model = detector

        def set_model(self, model, **kwargs):
            self.model = model

        def perform_inference(self, image):
            import torch
            from mmdet.structures import DetDataSample
            if detector.net is not None:  # the same network work per tile as ours
                h, w = image.shape[:2]
                inp = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
                detector.net.test_step(dict(inputs=[inp], data_samples=[DetDataSample(
                    metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))]))
            self._original_predictions = [detector.boxes(image)]

        def _create_object_prediction_list_from_original_predictions(
                self, shift_amount_list=[[0, 0]], full_shape_list=None):
            if shift_amount_list and isinstance(shift_amount_list[0], (int, float)):
                shift_amount_list = [shift_amount_list]
            if full_shape_list and isinstance(full_shape_list[0], (int, float)):
                full_shape_list = [full_shape_list]
            per_image = []
            for i, (b, sc) in enumerate(self._original_predictions):
                shift = shift_amount_list[i] if shift_amount_list else [0, 0]
                full = full_shape_list[i] if full_shape_list else None
                per_image.append([ObjectPrediction(bbox=[float(v) for v in box], category_id=0,
                                                   category_name='object', score=float(p),
                                                   shift_amount=list(shift), full_shape=full)
                                  for box, p in zip(b, sc)])
            self._object_prediction_list_per_image = per_image

    return Wrapped(model=detector, confidence_threshold=0.3, category_mapping={'0': 'object'})


def coco_ap(images, dets):
    """COCO bbox AP / AP50 / AR100... of ``dets`` [(boxes (N, 4), scores)] per image."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = dict(images=[], annotations=[], categories=[dict(id=1, name='object')])
    res = []
    for i, ((img, boxes), (db, ds)) in enumerate(zip(images, dets)):
        gt['images'].append(dict(id=i, width=img.shape[1], height=img.shape[0]))
        for b in boxes:
            gt['annotations'].append(dict(id=len(gt['annotations']) + 1, image_id=i,
                                          category_id=1, iscrowd=0, area=float(
                                              (b[2] - b[0]) * (b[3] - b[1])),
                                          bbox=[float(b[0]), float(b[1]), float(b[2] - b[0]),
                                                float(b[3] - b[1])]))
        for b, sc in zip(db, ds):
            res.append(dict(image_id=i, category_id=1, score=float(sc),
                            bbox=[float(b[0]), float(b[1]), float(b[2] - b[0]),
                                  float(b[3] - b[1])]))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(res) if res else COCO(), 'bbox')
        ev.params.maxDets = [1, 100, 1000]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # COCOeval's headline AP keeps 100 detections per image; these images hold 200 objects
    prec = ev.eval['precision'][:, :, 0, 0, -1]  # (IoU, recall), class 0, area all, 1000 dets
    ap = lambda p: float(p[p > -1].mean()) if (p > -1).any() else 0.0  # noqa: E731
    return dict(AP=ap(prec), AP50=ap(prec[0]), AP75=ap(prec[5]), AR=ev.stats[8])


def tiled_vs_sahi(args):
    """Same detector, same 512 px tiles at one scale: mmext's tiled SNIPER inference (batched,
    border rule, soft-NMS) vs sahi's get_sliced_prediction (GREEDYNMM on IOS 0.5)."""
    from mmext.models.detectors.sniper_tiled import sniper_tiled_inference, tile_grid
    images = large_images(args.tiled_images, objects=args.tiled_objects, seed=0,
                          gap=args.tiled_gap)
    K, d = 512, args.tiled_stride
    net = None
    if args.tiled_net:
        from mmdet.registry import MODELS
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        init_default_scope('mmdet')
        net = MODELS.build(Config.fromfile(osp.join(ROOT, SYN_CFGS['faster'])).model).eval()
    det = ComponentDetector(net)
    rows = {}
    t = time.perf_counter()
    ours = []
    for img, _ in images:
        r = sniper_tiled_inference(det, img, scales=(1.0, ), test_ranges=((0, 1e5), ),
                                   chip_size=K, stride=d, batch_size=8, border_delta=10,
                                   max_per_img=1000, per_scale=None)
        ours.append((r.bboxes.numpy(), r.scores.numpy()))
    rows['mmext tiled (border rule + soft-NMS)'] = (time.perf_counter() - t, ours)
    try:
        from sahi.predict import get_sliced_prediction
    except ImportError:
        print('sahi is not installed (pip install sahi==0.12.8, benchmark only): skipping it')
    else:
        model = sahi_model(det)
        t = time.perf_counter()
        theirs = []
        for img, _ in images:
            res = get_sliced_prediction(img, model, slice_height=K, slice_width=K,
                                        overlap_height_ratio=(K - d) / K,
                                        overlap_width_ratio=(K - d) / K,
                                        perform_standard_pred=False, verbose=0)
            p = res.object_prediction_list
            theirs.append((np.array([o.bbox.to_xyxy() for o in p], float).reshape(-1, 4),
                           np.array([o.score.value for o in p], float)))
        rows['sahi get_sliced_prediction (GREEDYNMM, IOS 0.5)'] = (time.perf_counter() - t,
                                                                  theirs)
    h, w = images[0][0].shape[:2]
    n_tiles = len(tile_grid(w, h, K, d))
    print(f'\nTiled inference, {len(images)} synthetic {w}x{h} images, '
          f'{len(images[0][1])} objects (6-48 px, >= {args.tiled_gap} px apart) each, {K} px tiles, stride {d} ({n_tiles} '
          f'tiles/image, mmext grid), same detector ({"Faster R-CNN R18 forward + " if net else ""}'
          'connected components)')
    print('| tiler | s/image | AP | AP50 | AP75 | AR@1000 |')
    print('|---|---|---|---|---|---|')
    for name, (sec, dets) in rows.items():
        m = coco_ap(images, dets)
        print(f"| {name} | {sec / len(images):.2f} | {m['AP']:.3f} | {m['AP50']:.3f} | "
              f"{m['AP75']:.3f} | {m['AR']:.3f} |")


def per_box_greedy_chips(boxes, img_w, img_h, chip_size, stride):
    """The reference for ``greedy_chips`` without ``rng``: per box, the chips that contain it;
    then per step the chip containing the most uncovered boxes (ties: lowest y, then x start)."""
    xs = chip_starts(img_w, chip_size, stride)
    ys = chip_starts(img_h, chip_size, stride)
    boxes = clip_boxes(boxes, img_w, img_h)
    ok = usable(boxes)
    holders = []  # per box: cell indices j * len(xs) + i of the chips containing it
    for b, good in zip(boxes, ok):
        cells = []
        if good:
            for j, y in enumerate(ys):
                if y <= b[1] and y + chip_size >= b[3]:
                    cells += [j * len(xs) + i for i, x in enumerate(xs)
                              if x <= b[0] and x + chip_size >= b[2]]
        holders.append(cells)
    todo = {n for n, cells in enumerate(holders) if cells}
    chips = []
    while todo:
        counts = [0] * (len(xs) * len(ys))
        for n in todo:
            for c in holders[n]:
                counts[c] += 1
        best = max(range(len(counts)), key=lambda c: (counts[c], -c))
        j, i = divmod(best, len(xs))
        chips.append((xs[i], ys[j], min(xs[i] + chip_size, img_w), min(ys[j] + chip_size, img_h)))
        todo = {n for n in todo if best not in holders[n]}
    return np.asarray(chips, dtype=np.int64).reshape(-1, 4)


def chip_scaling(args):
    from measure import compare, use_processes
    use_processes(args.processes)
    rng = np.random.RandomState(0)
    w, h, k, d = 1333, 800, 512, 32
    print(f'\nGreedy chip cover, {w}x{h} images at scale 1, chips {k}, stride {d}; '
          'images/s of mmext vs the per-box reference (Python loops), outputs equal')
    print('| boxes / image | chips / image | mmext img/s | reference img/s | mmext / reference '
          f'[95 %, over {args.processes} process(es)] | rounds |')
    print('|---|---|---|---|---|---|')
    for n in args.boxes:
        images = []
        for _ in range(args.scaling_images):
            side = np.exp(rng.normal(np.log(40), 0.8, n)).clip(4, 400)
            x1, y1 = rng.uniform(0, w - side), rng.uniform(0, h - side)
            images.append(np.stack([x1, y1, x1 + side, y1 + side], 1))
        ours = [greedy_chips(b, w, h, k, d)[0] for b in images]
        ref = [per_box_greedy_chips(b, w, h, k, d) for b in images]
        assert all(np.array_equal(a, b) for a, b in zip(ours, ref)), 'outputs differ'
        res = compare(dict(reference=lambda: [per_box_greedy_chips(b, w, h, k, d)
                                              for b in images],
                           mmext=lambda: [greedy_chips(b, w, h, k, d) for b in images]),
                      ref='reference', warmup=1, min_rounds=3, max_seconds=args.scaling_seconds)
        r = res.ratios['mmext']
        per = len(images)
        print(f'| {n} | {np.mean([len(c) for c in ours]):.1f} | {per / res.seconds["mmext"]:.1f} | '
              f'{per / res.seconds["reference"]:.2f} | {r.mean:.1f}x [{r.low:.1f}, {r.high:.1f}] | '
              f'{res.rounds}{"" if res.converged else " (cap)"} |', flush=True)


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
    parser.add_argument('--tiled', action='store_true',
                        help='only the tiled-inference comparison with sahi')
    parser.add_argument('--tiled-images', type=int, default=3)
    parser.add_argument('--tiled-stride', type=int, default=448)
    parser.add_argument('--tiled-objects', type=int, default=200, help='objects per image')
    parser.add_argument('--tiled-gap', type=int, default=3, help='min px between objects')
    parser.add_argument('--tiled-net', action='store_true',
                        help='also run a Faster R-CNN R18 forward per tile (timing)')
    parser.add_argument('--chip-scaling', action='store_true',
                        help='only the chip-generation scaling table')
    parser.add_argument('--boxes', type=int, nargs='+', default=[10, 500, 5000])
    parser.add_argument('--scaling-images', type=int, default=3)
    parser.add_argument('--scaling-seconds', type=float, default=60.0,
                        help='cap per box count and process')
    from measure import add_processes_argument
    add_processes_argument(parser)
    args = parser.parse_args()
    if args.chip_scaling:
        chip_scaling(args)
        return
    if args.epochs < 1 or args.train_images < 1 or args.val_images < 1:
        parser.error('--epochs, --train-images and --val-images must be >= 1')

    if args.tiled:
        tiled_vs_sahi(args)
        return
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
