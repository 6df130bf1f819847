"""`make demo`: train and evaluate the demo detector on the synthetic set, save a picture.

    python tools/demo.py [--config CONFIG] [--work-dir DIR] [--num-images N]

Prints mmengine's usual logs, then the COCO bbox mAP on the synthetic validation split and the
path of a PNG showing predictions (and ground truth) on a few validation images.
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


def draw_predictions(runner, out_file, num_images=4, score_thr=0.3):
    """Run the trained model on the first validation images and save one tiled PNG."""
    from mmdet.visualization import DetLocalVisualizer
    vis = DetLocalVisualizer(name='mmext_demo')
    vis.dataset_meta = runner.test_dataloader.dataset.metainfo
    runner.model.eval()
    tiles = []
    with torch.no_grad():
        for batch in runner.test_dataloader:
            for sample in runner.model.test_step(batch):
                if len(tiles) == num_images:
                    break
                img = mmcv.imread(sample.img_path, channel_order='rgb')
                vis.add_datasample('pred', img, sample, draw_gt=True, show=False,
                                   pred_score_thr=score_thr)
                tile = vis.get_image()
                scale = 480 / max(tile.shape[:2])
                tiles.append(cv2.resize(tile, None, fx=scale, fy=scale))
            if len(tiles) == num_images:
                break
    h = max(t.shape[0] for t in tiles)
    row = [np.pad(t, ((0, h - t.shape[0]), (0, 4), (0, 0)), constant_values=255) for t in tiles]
    mmcv.imwrite(np.concatenate(row, 1)[..., ::-1], out_file)
    return out_file


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-images', type=int, default=4)
    args = parser.parse_args()

    t0 = time.time()
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    cfg.launcher = 'none'
    adapt_cfg_to_device(cfg)
    check_data_paths(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    picture = draw_predictions(runner, osp.join(args.work_dir, 'detections.png'),
                               args.num_images)
    minutes = (time.time() - t0) / 60
    print('\n' + '=' * 72)
    print(f'mmext demo: {osp.basename(args.config)} trained in {minutes:.1f} min')
    print(f"COCO bbox mAP on the synthetic validation split: {metrics['coco/bbox_mAP']:.3f} "
          f"(AP50 {metrics['coco/bbox_mAP_50']:.3f}, APs {metrics['coco/bbox_mAP_s']:.3f}, "
          f"APm {metrics['coco/bbox_mAP_m']:.3f}, APl {metrics['coco/bbox_mAP_l']:.3f})")
    print(f'detections (green/red/blue boxes with scores; ground truth drawn too): {picture}')
    print('=' * 72)


if __name__ == '__main__':
    main()
