"""Does Gaussian YOLOv3 cope better with noisy box labels than YOLOv3? Both trained the same way.

    python benchmarks/gaussian_yolo.py [--epochs 12] [--scale 256] [--jitter 0.1]
                                       [--score-thr 0.1 0.3] [--train-images N]

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
  that overlap an object (IoU >= 0.1). The paper expects a positive correlation.
"""
import argparse
import os.path as osp
import tempfile

import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import Config
from mmengine.runner import Runner
from scipy.stats import pearsonr, spearmanr

import mmext  # noqa: F401
from mmext.utils.launch import adapt_cfg_to_device

CFGS = {
    'YOLOv3': 'configs/gaussian_yolov3/yolov3_mobilenetv2_synthetic-jitter.py',
    'Gaussian YOLOv3': 'configs/gaussian_yolov3/gaussian-yolov3_mobilenetv2_synthetic-jitter.py',
}


def make_cfg(name, args, work_dir):
    cfg = Config.fromfile(CFGS[name])
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = args.epochs
    cfg.param_scheduler[1].update(T_max=args.epochs, end=args.epochs)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 50
    cfg.randomness = dict(seed=0)
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].num_workers = args.workers
        cfg[loader].persistent_workers = args.workers > 0
        for t in cfg[loader].dataset.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (args.scale, args.scale)
            if t['type'] == 'JitterBoxes':
                t['ratio'] = args.jitter
    if args.train_images:
        cfg.train_dataloader.dataset.indices = args.train_images
    cfg.test_dataloader = cfg.val_dataloader
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


def run(name, args, root):
    runner = Runner.from_cfg(make_cfg(name, args, osp.join(root, name.replace(' ', '_'))))
    runner.train()
    metrics = runner.test()
    head = runner.model.bbox_head
    rows = {}
    dets = collect(runner.model, runner.test_dataloader)
    rows[name] = dict(ap=_ap(metrics), counts=[tp_fp(dets, t) for t in args.score_thr],
                      corr=None)
    if hasattr(head, 'uncertainty_score'):
        rows[name]['corr'] = []
        for thr in args.score_thr:
            sig, err = sigma_vs_iou(dets, thr)
            if len(sig) > 2 and sig.std() > 0 and err.std() > 0:
                rows[name]['corr'].append(
                    (pearsonr(sig, err)[0], spearmanr(sig, err)[0], len(sig)))
            else:
                rows[name]['corr'].append((float('nan'), float('nan'), len(sig)))
        # the ablation: the NLL loss alone, scored as YOLOv3 (objectness x class)
        head.uncertainty_score = False
        metrics = runner.test()
        plain = collect(runner.model, runner.test_dataloader)
        rows[name + ' (YOLOv3 score)'] = dict(
            ap=_ap(metrics), counts=[tp_fp(plain, t) for t in args.score_thr], corr=None)
        head.uncertainty_score = True
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--scale', type=int, default=256)
    parser.add_argument('--jitter', type=float, default=0.1,
                        help='box edge noise std as a fraction of box size (0: clean labels)')
    parser.add_argument('--score-thr', type=float, nargs='+', default=[0.1, 0.3])
    parser.add_argument('--train-images', type=int, default=0,
                        help='train on the first N images only (0: all 128)')
    parser.add_argument('--workers', type=int, default=2)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for name in CFGS:
            results.update(run(name, args, root))

    print(f'\nYOLOv3 vs Gaussian YOLOv3 (MobileNetV2), synthetic set, boxes jittered by '
          f'{args.jitter} x size in training, {args.epochs} epochs at {args.scale} px; '
          f'TP/FP: IoU >= 0.5 with a clean val box of the same class')
    print('| model | score thr | bbox mAP | AP50 | TP | FP | GT | '
          'corr(sigma, 1-IoU) Pearson / Spearman (n) |')
    print('|---|---|---|---|---|---|---|---|')
    for name, r in results.items():
        for k, thr in enumerate(args.score_thr):
            tp, fp, num_gt = r['counts'][k]
            corr = '-' if r['corr'] is None else '{:.3f} / {:.3f} ({})'.format(*r['corr'][k])
            print(f'| {name} | {thr} | {r["ap"][0]:.3f} | {r["ap"][1]:.3f} | {tp} | {fp} | '
                  f'{num_gt} | {corr} |')
    for k, thr in enumerate(args.score_thr):
        base_tp, base_fp, _ = results['YOLOv3']['counts'][k]
        tp, fp, _ = results['Gaussian YOLOv3']['counts'][k]
        if base_fp and base_tp:
            print(f'score >= {thr}: Gaussian YOLOv3 vs YOLOv3: FP '
                  f'{100 * (fp - base_fp) / base_fp:+.1f} %, TP '
                  f'{100 * (tp - base_tp) / base_tp:+.1f} % (paper, KITTI: FP -41.4 %, '
                  f'TP +7.3 %)')


if __name__ == '__main__':
    main()
