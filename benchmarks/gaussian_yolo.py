"""Does Gaussian YOLOv3 cut false positives at equal recall? YOLOv3 vs Gaussian YOLOv3, same training.

    python benchmarks/gaussian_yolo.py [--epochs 12] [--scale 256] [--jitter 0.0 0.1]
                                       [--seeds 0 1 2] [--score-thr 0.1 0.3] [--match-thr 0.3]
    # what the model card reports: 1024 training / 256 validation images (--data large), so
    # that neither model can memorise its training set, 15 epochs (the iterations of 120 epochs
    # on the 128 default images), one process per (model, seed, jitter), two at a time:
    python benchmarks/gaussian_yolo.py --data large --epochs 15 --scale 160 --seeds S \\
        --jitter J --models M --workers 0
    #   ^ for S in 0 1 2, J in 0.1 and 0.0 (about 24-31 min per model beside one other run) and M in
    #   YOLOv3 'Gaussian YOLOv3', then the tables:
    python benchmarks/gaussian_yolo.py --data large --epochs 15 --scale 160 --seeds 0 1 2 \\
        --jitter 0.1 0.0 --workers 0
    # the runs before it, on the 128 default images (120 epochs, about 21 min per model on one
    # core beside one other run), one process per (model, seed, jitter) two at a time:
    python benchmarks/gaussian_yolo.py --epochs 120 --scale 160 --seeds S --jitter J \\
        --models M --workers 0
    #   ^ for S in 0 1 2, J in 0.1 0.0 and M in YOLOv3 'Gaussian YOLOv3', then the tables:
    python benchmarks/gaussian_yolo.py --epochs 120 --scale 160 --seeds 0 1 2 --jitter 0.0 0.1 \\
        --workers 0
    # the shorter runs before it (60 epochs, 9.5 min per model), one process per (seed, jitter):
    python benchmarks/gaussian_yolo.py --epochs 60 --scale 160 --seeds S --jitter J --workers 0
    #   ^ for S in 0 1 2 and J in 0.0 0.1
    # and 30 epochs at 192 px (7.5 min per model):
    python benchmarks/gaussian_yolo.py --epochs 30 --scale 192 --seeds 0 1 2 --jitter 0.1 0.0 \\
        --workers 0
    # the protocol of the paper's claim, sized for a GPU (4x the iterations at 256 px, 5 seeds;
    # its time on a GPU was not measured here):
    python benchmarks/gaussian_yolo.py --data large --epochs 60 --jitter 0.0 0.1 --seeds 0 1 2 3 4

Choi et al. (ICCV 2019, arXiv:1904.04620) model each box coordinate as a Gaussian and report
-41 % false positives and +7 % true positives on KITTI at the same score threshold, and that the
predicted uncertainty falls as a detection's IoU rises. Here both mmdet's YOLOv3 and Gaussian
YOLOv3 (MobileNetV2, synthetic shapes) are trained on the same deliberately noisy boxes (every
training box edge jittered by N(0, (jitter * size)^2), fixed per annotation) for the same
iterations (same seed, same data) and tested on the clean validation boxes. Reported, all from
this one run:

* COCO bbox mAP / AP50 (mmdet's evaluator);
* true / false positives at each ``--score-thr`` (a detection is a TP when it matches a not yet
  matched ground truth box of its class with IoU >= 0.5, greedily by score);
* for Gaussian YOLOv3 also with YOLOv3's score (objectness x class, the NLL loss alone);
* Pearson and Spearman correlation between each detection's mean sigma and its IoU error
  (1 - IoU with the best same-class ground truth box), over detections above the threshold
  that overlap an object (IoU >= 0.1). The paper expects a positive correlation;
* **FP at matched TP** (the paper's "-40 % false positives at the same true positives"): YOLOv3's
  TP count at ``--match-thr`` is the target; each model's score threshold is lowered until it
  reaches that many TP, and its FP count there is compared;
* the training loss per epoch (is either model still learning?), each term, and the value
  each model's box term would reach on a memorised training set (``loss_floors``).

Every figure per seed, then the mean over seeds with its 95 % t-interval (``benchmarks/
measure.py``); the Gaussian-minus-YOLOv3 differences are paired by seed. ``--jitter`` takes
several noise levels (0 = clean labels) and runs the whole protocol for each.
"""
import argparse
import os.path as osp
import tempfile

import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from scipy.stats import pearsonr, spearmanr

import mmext  # noqa: F401
from mmext.utils.launch import adapt_cfg_to_device
from measure import cached, mean_ci, paired_ci, run_key

@HOOKS.register_module(force=True)
class EpochLossHook(Hook):
    """Mean training loss of every epoch, total and per term (the curves the report prints).

    The terms matter: YOLOv3's xy term is a BCE against fractional targets, whose floor is the
    targets' entropy, not 0, so a flat total can hide class and objectness terms still falling
    (or already at 0 on a memorised training set)."""

    def before_train(self, runner):
        self.losses, self.terms = [], {}

    def after_train_epoch(self, runner):
        iters = len(runner.train_dataloader)
        hub = runner.message_hub
        self.losses.append(float(hub.get_scalar('train/loss').mean(iters)))
        for key in hub.log_scalars:
            if key.startswith('train/loss_'):
                self.terms.setdefault(key[len('train/'):], []).append(
                    float(hub.get_scalar(key).mean(iters)))


CFGS = {
    'YOLOv3': 'configs/gaussian_yolov3/yolov3_mobilenetv2_synthetic-jitter.py',
    'Gaussian YOLOv3': 'configs/gaussian_yolov3/gaussian-yolov3_mobilenetv2_synthetic-jitter.py',
}


def make_cfg(name, args, work_dir, seed=0, jitter=0.1):
    cfg = Config.fromfile(CFGS[name])
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = args.epochs
    cfg.param_scheduler[1].update(T_max=args.epochs, end=args.epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 50
    cfg.randomness = dict(seed=seed)
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(type='EpochLossHook')]
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].num_workers = args.workers
        cfg[loader].persistent_workers = args.workers > 0
        for t in cfg[loader].dataset.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (args.scale, args.scale)
            if t['type'] == 'JitterBoxes':
                t['ratio'] = jitter
    if args.data == 'large':
        cfg.train_dataloader.dataset.split = 'train_large'
        cfg.val_dataloader.dataset.split = 'val_large'
        cfg.val_evaluator.ann_file = 'data/synthetic/annotations/val_large.json'
    if args.train_images:
        cfg.train_dataloader.dataset.indices = args.train_images
    # runner.test() reads the test pair: the config's test_evaluator is a copy of val_evaluator
    # taken when the config was parsed, so it must follow the split chosen above
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    # evaluated once after training, by runner.test(): no validation loop during training
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return adapt_cfg_to_device(cfg)


@torch.no_grad()
def collect(model, loader):
    """(pred_instances, gt_instances) per validation image, in original image pixels."""
    model.eval()
    out = []
    for data in loader:
        for sample in model.test_step(data):
            out.append((sample.pred_instances.cpu(), sample.gt_instances.cpu()))
    return out


def tp_fp(dets, score_thr, iou_thr=0.5):
    """Greedy matching by score; returns TP, FP, number of GT boxes."""
    tp = fp = num_gt = 0
    for pred, gt in dets:
        num_gt += len(gt)
        keep = pred.scores >= score_thr
        bboxes, scores, labels = pred.bboxes[keep], pred.scores[keep], pred.labels[keep]
        matched = torch.zeros(len(gt), dtype=torch.bool)
        ious = bbox_overlaps(bboxes, gt.bboxes) if len(gt) and len(bboxes) else None
        for i in scores.argsort(descending=True).tolist():
            if ious is None:
                fp += 1
                continue
            iou = ious[i].clone()
            iou[(gt.labels != labels[i]) | matched] = -1
            j = int(iou.argmax())
            if iou[j] >= iou_thr:
                matched[j] = True
                tp += 1
            else:
                fp += 1
    return tp, fp, num_gt


def scored_matches(dets, iou_thr=0.5):
    """(score, is_tp) of every detection, greedy matching by score within each image; the
    matching of a score prefix does not depend on the threshold, so one pass serves them all."""
    scores, is_tp = [], []
    for pred, gt in dets:
        matched = torch.zeros(len(gt), dtype=torch.bool)
        ious = bbox_overlaps(pred.bboxes, gt.bboxes) if len(gt) and len(pred) else None
        for i in pred.scores.argsort(descending=True).tolist():
            hit = False
            if ious is not None:
                iou = ious[i].clone()
                iou[(gt.labels != pred.labels[i]) | matched] = -1
                j = int(iou.argmax())
                if iou[j] >= iou_thr:
                    matched[j] = hit = True
            scores.append(float(pred.scores[i]))
            is_tp.append(hit)
    order = np.argsort(-np.asarray(scores), kind='stable')
    return np.asarray(scores)[order], np.asarray(is_tp, bool)[order]


def fp_at_tp(matches, target_tp):
    """FP count (and the score threshold) when a model first reaches ``target_tp`` true
    positives going down its score list; None when it never does."""
    scores, is_tp = matches
    tp = np.cumsum(is_tp)
    reached = np.nonzero(tp >= target_tp)[0]
    if target_tp <= 0 or not len(reached):
        return None
    k = reached[0]
    return int(k + 1 - tp[k]), float(scores[k])


def sigma_vs_iou(dets, score_thr, min_iou=0.1):
    """Mean sigma and IoU error of detections above score_thr that overlap an object."""
    sig, err = [], []
    for pred, gt in dets:
        keep = pred.scores >= score_thr
        if not keep.any() or not len(gt):
            continue
        ious = bbox_overlaps(pred.bboxes[keep], gt.bboxes)
        ious[pred.labels[keep][:, None] != gt.labels[None, :]] = 0
        best = ious.max(dim=1).values
        on_object = best >= min_iou
        sig.append(pred.bbox_uncertainty[keep][on_object].mean(-1))
        err.append(1 - best[on_object])
    if not sig:
        return np.array([]), np.array([])
    return torch.cat(sig).numpy(), torch.cat(err).numpy()


def _ap(metrics):
    # mmdet's CocoMetric returns no keys when there is no detection at all (early training)
    return metrics.get('coco/bbox_mAP', 0.0), metrics.get('coco/bbox_mAP_50', 0.0)


def run(name, args, root, seed, jitter):
    """The rows of one trained model, read from ``--results-dir`` when it was trained before."""
    key = run_key(model=name, seed=seed, jitter=jitter, epochs=args.epochs, scale=args.scale,
                  train_images=args.train_images, score_thr=args.score_thr,
                  data=None if args.data == 'default' else args.data)
    rows = cached(args.results_dir, key, lambda: _to_json(_run(name, args, root, seed, jitter)))
    for r in rows.values():  # JSON lists back to the arrays fp_at_tp() takes
        r['matches'] = (np.asarray(r['matches'][0], float), np.asarray(r['matches'][1], bool))
    return rows


def _to_json(rows):
    for r in rows.values():
        r['matches'] = [r['matches'][0].tolist(), r['matches'][1].tolist()]
    return rows


def _run(name, args, root, seed, jitter):
    work_dir = osp.join(root, f"{name.replace(' ', '_')}_s{seed}_j{jitter}")
    runner = Runner.from_cfg(make_cfg(name, args, work_dir, seed, jitter))
    runner.train()
    hook = next(h for h in runner.hooks if type(h).__name__ == 'EpochLossHook')
    losses, terms = hook.losses, hook.terms
    metrics = runner.test()
    head = runner.model.bbox_head
    rows = {}
    dets = collect(runner.model, runner.test_dataloader)
    rows[name] = dict(ap=_ap(metrics), counts=[tp_fp(dets, t) for t in args.score_thr],
                      corr=None, matches=scored_matches(dets), losses=losses, terms=terms)
    if hasattr(head, 'uncertainty_score'):
        rows[name]['corr'] = []
        for thr in args.score_thr:
            sig, err = sigma_vs_iou(dets, thr)
            if len(sig) > 2 and sig.std() > 0 and err.std() > 0:
                rows[name]['corr'].append(
                    (float(pearsonr(sig, err)[0]), float(spearmanr(sig, err)[0]), len(sig)))
            else:
                rows[name]['corr'].append((float('nan'), float('nan'), len(sig)))
        # the ablation: the NLL loss alone, scored as YOLOv3 (objectness x class)
        head.uncertainty_score = False
        metrics = runner.test()
        plain = collect(runner.model, runner.test_dataloader)
        rows[name + ' (YOLOv3 score)'] = dict(
            ap=_ap(metrics), counts=[tp_fp(plain, t) for t in args.score_thr], corr=None,
            matches=scored_matches(plain), losses=losses)
        head.uncertainty_score = True
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--scale', type=int, default=256)
    parser.add_argument('--jitter', type=float, nargs='+', default=[0.1],
                        help='box edge noise std as a fraction of box size (0: clean labels)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--score-thr', type=float, nargs='+', default=[0.1, 0.3])
    parser.add_argument('--match-thr', type=float, default=0.3,
                        help="YOLOv3's TP count at this score is the TP target of every model")
    parser.add_argument('--data', choices=('default', 'large'), default='default',
                        help="'default': the 128 train / 32 val images of the synthetic "
                        "configs; 'large': 1024 train / 256 val images of the same kind "
                        "(splits train_large / val_large), which one schedule cannot memorise")
    parser.add_argument('--train-images', type=int, default=0,
                        help='train on the first N images only (0: all of the split)')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--models', nargs='+', default=list(CFGS), choices=list(CFGS),
                        help='train only these (one process per model and seed); the tables '
                        'need both, so a call with one model only fills --results-dir')
    parser.add_argument('--results-dir', default='work_dirs/benchmarks/gaussian_yolo',
                        help='each run\'s figures are kept here (JSON) and reused: split the seeds '
                        'over processes, then call again with every seed for the table; "" keeps '
                        'nothing')
    args = parser.parse_args()
    # one work root for every run: mmengine's visualizer is a process-wide instance that keeps
    # writing to the first run's directory, which must outlive the later runs
    with tempfile.TemporaryDirectory() as root:
        for jitter in args.jitter:
            per_seed = {}
            for seed in args.seeds:
                per_seed[seed] = {}
                for name in args.models:
                    per_seed[seed].update(run(name, args, root, seed, jitter))
            if set(args.models) == set(CFGS):
                report(args, root, jitter, per_seed)


def loss_floors(args, root, jitter):
    """The per-iteration value the two box terms fall towards on a memorised training set, from
    one pass over it with the targets each head builds (the assignment does not depend on the
    predictions): YOLOv3's ``loss_xy`` is a BCE against fractional targets and cannot go below
    their entropy; Gaussian YOLOv3's ``loss_bbox`` reaches its minimum, ``gamma *
    log(sqrt(2 pi) sigma_offset)`` per positive coordinate (-0.285 for 0.3), only when every
    coordinate is hit exactly with sigma -> 0."""
    floors = {}
    for name in CFGS:
        runner = Runner.from_cfg(make_cfg(name, args, osp.join(root, 'floor_' + name.replace(
            ' ', '_')), 0, jitter))
        model, head, per_batch = runner.model, runner.model.bbox_head, []

        def spy(pred_map, target_map, neg_map, loss=head.loss_by_feat_single):
            per_batch[-1] += float(_floor(head, target_map))
            return loss(pred_map, target_map, neg_map)

        head.loss_by_feat_single = spy
        with torch.no_grad():
            for data in runner.train_dataloader:
                per_batch.append(0.0)
                model(**model.data_preprocessor(data, True), mode='loss')
        floors[name] = float(np.mean(per_batch))
    return floors


def _floor(head, target_map):
    """The head's own box loss at a perfect prediction of these targets: YOLOv3's xy BCE with the
    target as prediction (its entropy), Gaussian YOLOv3's NLL with mu = target and sigma = 0."""
    pos = target_map[..., 4] > 0
    if hasattr(head, 'loss_bbox'):
        t = target_map[..., :4][pos]
        gamma = target_map[..., 5 + head.num_classes][pos]
        return head.loss_bbox(t, torch.zeros_like(t), t, weight=gamma[:, None].expand_as(t))
    t = target_map[..., :2][pos].clamp(1e-6, 1 - 1e-6)
    return head.loss_xy(torch.logit(t), t)


def print_loss_terms(per_seed, seeds):
    """Each loss term at a few epochs, mean over seeds (runs recorded before the terms were
    kept have none; then nothing is printed)."""
    for name in ('YOLOv3', 'Gaussian YOLOv3'):
        runs = [per_seed[s][name].get('terms') for s in seeds]
        if not all(runs):
            return
        epochs = len(per_seed[seeds[0]][name]['losses'])
        marks = sorted({1, epochs // 4, epochs // 2, 3 * epochs // 4, epochs} - {0})
        if name == 'YOLOv3':
            print(f'\nLoss terms, mean over {len(seeds)} seed(s), by epoch:')
            print('| model | term | ' + ' | '.join(str(e) for e in marks) + ' |')
            print('|---|---|' + '---|' * len(marks))
        for term in runs[0]:
            m = np.mean([r[term] for r in runs], axis=0)
            print(f'| {name} | {term} | ' + ' | '.join(f'{m[e - 1]:.2f}' for e in marks) + ' |')


def print_loss_curves(per_seed, seeds):
    """Mean training loss over seeds every few epochs, and how much it still fell per epoch
    over the last and the middle fifth of the schedule: the question is whether the *model*
    converged, and a cosine schedule flattens any curve at its end, so the fall at constant-ish
    lr matters too. The fall is in loss units per epoch; as a share of the loss only where the
    loss stays positive (Gaussian YOLOv3's NLL goes below 0, where a share means nothing)."""
    curves = {n: np.array([per_seed[s][n]['losses'] for s in seeds]) for n in
              ('YOLOv3', 'Gaussian YOLOv3') if per_seed[seeds[0]][n]['losses']}
    if not curves:
        return
    epochs = len(next(iter(curves.values()))[0])
    marks = sorted({1, epochs, *range(5, epochs, 5)})
    print(f'\nTraining loss, mean over {len(seeds)} seed(s), by epoch:')
    print('| model | ' + ' | '.join(str(e) for e in marks) + ' | fall per epoch, last '
          'fifth | fall per epoch, middle fifth |')
    print('|---|' + '---|' * (len(marks) + 2))
    k = max(1, epochs // 5)
    mid0 = epochs // 2 - k // 2
    for name, c in curves.items():
        m = c.mean(0)
        last = _fall(m, epochs - k - 1, epochs - 1) if epochs > k else '-'
        mid = _fall(m, mid0, mid0 + k) if mid0 + k < epochs else '-'
        print(f'| {name} | ' + ' | '.join(f'{m[e - 1]:.1f}' for e in marks) +
              f' | {last} | {mid} |')


def _fall(m, a, b):
    """Mean fall per epoch of curve m from index a to b: absolute, and relative if m > 0."""
    per_epoch = (m[a] - m[b]) / (b - a)
    rel = f' ({100 * per_epoch / m[a]:.1f} %)' if min(m[a], m[b]) > 0 else ''
    return f'{per_epoch:.2f}{rel}'


def report(args, root, jitter, per_seed):
    seeds = sorted(per_seed)
    names = list(per_seed[seeds[0]])
    print(f'\nYOLOv3 vs Gaussian YOLOv3 (MobileNetV2), synthetic set ({args.data}), training '
          f'boxes jittered by {jitter} x size, {args.epochs} epochs at {args.scale} px, '
          f'seeds {seeds}; '
          f'TP/FP: IoU >= 0.5 with a clean val box of the same class')
    print('| seed | model | score thr | bbox mAP | AP50 | TP | FP | GT | '
          'corr(sigma, 1-IoU) Pearson / Spearman (n) |')
    print('|---|---|---|---|---|---|---|---|---|')
    for seed in seeds:
        for name, r in per_seed[seed].items():
            for k, thr in enumerate(args.score_thr):
                tp, fp, num_gt = r['counts'][k]
                corr = '-' if r['corr'] is None else '{:.3f} / {:.3f} ({})'.format(
                    *r['corr'][k])
                print(f'| {seed} | {name} | {thr} | {r["ap"][0]:.3f} | {r["ap"][1]:.3f} | {tp} | '
                      f'{fp} | {num_gt} | {corr} |')
    print_loss_curves(per_seed, seeds)
    print_loss_terms(per_seed, seeds)
    floors = loss_floors(args, root, jitter)
    print(f"Floors per iteration (one pass over the training set): YOLOv3 loss_xy >= "
          f"{floors['YOLOv3']:.1f} (its targets' entropy), Gaussian YOLOv3 loss_bbox >= "
          f"{floors['Gaussian YOLOv3']:.1f} (every coordinate hit exactly, sigma -> 0)")
    # FP at matched TP, the paper's comparison
    print(f"\nFP at matched TP (target = YOLOv3's TP count at score >= {args.match_thr}):")
    print('| seed | target TP | model | FP | score thr reached | FP vs YOLOv3 |')
    print('|---|---|---|---|---|---|')
    change = {n: [] for n in names if n != 'YOLOv3'}
    for seed in seeds:
        rows = per_seed[seed]
        target = int(rows['YOLOv3']['matches'][1][
            rows['YOLOv3']['matches'][0] >= args.match_thr].sum())
        base = fp_at_tp(rows['YOLOv3']['matches'], target)
        for name, r in rows.items():
            got = fp_at_tp(r['matches'], target)
            if got is None or base is None:
                print(f'| {seed} | {target} | {name} | never reaches the target | - | - |')
                continue
            rel = '-' if name == 'YOLOv3' or not base[0] else f'{100 * (got[0] / base[0] - 1):+.1f} %'
            if name != 'YOLOv3' and base[0]:
                change[name].append(100 * (got[0] / base[0] - 1))
            print(f'| {seed} | {target} | {name} | {got[0]} | {got[1]:.3f} | {rel} |')
    for name, v in change.items():
        if v:
            print(f'{name} vs YOLOv3, FP change at matched TP over {len(v)} seeds: '
                  f'{mean_ci(v)} %  (paper, KITTI/BDD: about -41 %)')
    for name in names:
        print(f"bbox mAP {name} over seeds: {mean_ci([per_seed[s][name]['ap'][0] for s in seeds])}")
    for name in names:
        if name == 'YOLOv3':
            continue
        a = [per_seed[s][name]['ap'][0] for s in seeds]
        b = [per_seed[s]['YOLOv3']['ap'][0] for s in seeds]
        print(f'bbox mAP {name} - YOLOv3, paired by seed: {paired_ci(a, b)}')
    for k, thr in enumerate(args.score_thr):
        r = [per_seed[s]['Gaussian YOLOv3']['corr'][k][0] for s in seeds]
        print(f'corr(sigma, 1 - IoU), Pearson at score {thr}, over seeds: {mean_ci(r)}')


if __name__ == '__main__':
    main()
