"""`make demo`: train and evaluate the demo detector on the synthetic set, save pictures.

    python tools/demo.py [--config CONFIG] [--work-dir DIR] [--num-images N] [--seed S]

Prints mmengine's usual logs, then the device it trained on and its training images/s, the COCO
bbox mAP on the synthetic validation split, and the paths of two PNGs: a grid of ground truth
and predictions on a few validation images (``detections.png``; one row per image, ground truth
left, predictions right, each panel at least 512 px) and the training loss curve
(``loss_curve.png``). The seed comes from the config (``randomness``); ``--seed`` overrides it.
"""
import argparse
import os.path as osp
import time

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmext  # noqa: F401
from mmext.utils.launch import adapt_cfg_to_device, check_data_paths

DEFAULT_CONFIG = 'configs/spinenet/centernet_spinenet-49s_synthetic.py'


def _upscaled(img, sample, side):
    """The image and a copy of its sample scaled so that the longer side is ``side``: the
    visualiser draws labels at a fixed pixel size, so small images are enlarged before drawing,
    not after (which would blur the text)."""
    scale = side / max(img.shape[:2])
    if scale <= 1:
        return img, sample
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    sample = sample.clone()  # shallow: give it its own instances before scaling them
    for field in ('gt_instances', 'pred_instances'):
        if field in sample and 'bboxes' in sample.get(field):
            inst = sample.get(field).clone()
            inst.bboxes = inst.bboxes * scale
            sample.set_field(inst, field)
    return big, sample


def draw_predictions(runner, out_file, num_images=4, score_thr=0.3, side=512):
    """Ground truth | predictions of the first validation images, one row per image."""
    from mmdet.visualization import DetLocalVisualizer
    vis = DetLocalVisualizer(name='mmext_demo')
    vis.dataset_meta = runner.test_dataloader.dataset.metainfo
    runner.model.eval()
    rows = []
    with torch.no_grad():
        for batch in runner.test_dataloader:
            for sample in runner.model.test_step(batch):
                if len(rows) == num_images:
                    break
                img = mmcv.imread(sample.img_path, channel_order='rgb')
                img, sample = _upscaled(img, sample, side)
                vis.add_datasample('pred', img, sample, draw_gt=True, show=False,
                                   pred_score_thr=score_thr)
                rows.append(vis.get_image())  # [ground truth | prediction] side by side
            if len(rows) == num_images:
                break
    w = max(r.shape[1] for r in rows)
    pad = [np.pad(r, ((0, 8), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    mmcv.imwrite(np.concatenate(pad, 0)[..., ::-1], out_file)
    return out_file


def plot_loss_curve(work_dir, out_file):
    """Training losses against iterations, from mmengine's ``vis_data/scalars.json``."""
    import glob
    import json

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    rows = [json.loads(line) for line in open(logs[-1])]
    rows = [r for r in rows if 'loss' in r and 'iter' in r]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    keys = ['loss'] + sorted(k for k in rows[0] if k.startswith('loss_'))
    for key in keys:
        ax.plot([r['iter'] for r in rows], [r[key] for r in rows], label=key,
                linewidth=2 if key == 'loss' else 1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('training loss')
    ax.set_yscale('log')
    ax.set_title(f'{osp.basename(work_dir)}: training loss')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_file)
    plt.close(fig)
    return out_file


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--seed', type=int, default=None, help="overrides the config's seed")
    args = parser.parse_args()

    t0 = time.time()
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    cfg.launcher = 'none'
    if args.seed is not None:
        cfg.randomness = dict(cfg.get('randomness') or {}, seed=args.seed)
    adapt_cfg_to_device(cfg)
    check_data_paths(cfg)
    runner = Runner.from_cfg(cfg)  # mmengine puts the model on the GPU when there is one
    t_train = time.time()
    runner.train()
    t_train = time.time() - t_train
    images = len(runner.train_dataloader.dataset) * runner.max_epochs
    metrics = runner.test()
    picture = draw_predictions(runner, osp.join(args.work_dir, 'detections.png'),
                               args.num_images)
    curve = plot_loss_curve(args.work_dir, osp.join(args.work_dir, 'loss_curve.png'))
    device = next(runner.model.parameters()).device
    where = (torch.cuda.get_device_name(device) if device.type == 'cuda'
             else f'CPU, {torch.get_num_threads()} threads')
    minutes = (time.time() - t0) / 60
    print('\n' + '=' * 72)
    print(f'mmext demo: {osp.basename(args.config)}, seed {cfg.randomness.get("seed")}, '
          f'trained on {device.type} ({where}) in {minutes:.1f} min, '
          f'{images / t_train:.1f} training images/s')
    print(f"COCO bbox mAP on the synthetic validation split: {metrics['coco/bbox_mAP']:.3f} "
          f"(AP50 {metrics['coco/bbox_mAP_50']:.3f}, APs {metrics['coco/bbox_mAP_s']:.3f}, "
          f"APm {metrics['coco/bbox_mAP_m']:.3f}, APl {metrics['coco/bbox_mAP_l']:.3f})")
    print(f'detections (one row per image: ground truth left, predictions right): {picture}')
    print(f'training loss curve: {curve}')
    print('=' * 72)


if __name__ == '__main__':
    main()
