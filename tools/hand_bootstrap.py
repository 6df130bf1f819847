"""Multiview bootstrapping of a hand keypoint detector (Simon et al., CVPR 2017, arXiv:1704.07809).

Trains d_0 on a labelled single-view set, then ``--iterations`` rounds of: detect in every view of
the multiview frames, triangulate (RANSAC over view pairs, lambda = 0.2), keep the top-N frames,
reproject as labels (``WORK_DIR/iter_<i>/labels.json``, COCO keypoints, figures in
``labels_figures.json``), retrain -> d_i. Each d_i is evaluated on the config's validation set
(PCK@0.2 of the box, AUC, EPE); the table is printed and saved as ``WORK_DIR/summary.json``.

On the synthetic rig (default; generated on first use):

    python tools/hand_bootstrap.py configs/hand/cpm_hand_synthetic-96x96.py --iterations 2

On your own calibrated multiview data: ``--labelled`` and ``--multiview`` COCO-keypoint files whose
image names are relative to ``--data-root``; the multiview file has ``frame_id``/``view_id`` per
image, a hand ``bbox`` per image (e.g. from tools/hand_demo.py's boxes) and a
``cameras: {view_id: 3x4 matrix}`` block (see mmext/pose/synthetic_hands.py).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmext  # noqa: E402,F401
from mmext.pose.bootstrap import mmengine_model_fn, mmengine_train_fn, run_bootstrap  # noqa: E402
from mmext.pose.synthetic_hands import DATA_ROOT, ensure_hands_generated  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', nargs='?', default='configs/hand/cpm_hand_synthetic-96x96.py')
    p.add_argument('--iterations', type=int, default=2, help='bootstrapping rounds k')
    p.add_argument('--top-n', type=int, default=16, help='frames kept per round (N)')
    p.add_argument('--conf-thr', type=float, default=0.2, help='lambda (paper: 0.2)')
    p.add_argument('--inlier-thr', type=float, default=4.0,
                   help='RANSAC reprojection inlier threshold in pixels')
    p.add_argument('--min-inliers', type=int, default=2,
                   help='inlier views a keypoint needs to be triangulated (>= 2)')
    p.add_argument('--min-keypoints', type=int, default=8,
                   help='views with fewer reprojected keypoints get no label')
    p.add_argument('--train-iters', type=int, default=None,
                   help='train every d_i for about this many iterations '
                   '(default: the config\'s epochs)')
    p.add_argument('--data-root', default=DATA_ROOT)
    p.add_argument('--labelled', default=None,
                   help='labelled COCO file (default: synthetic labelled)')
    p.add_argument('--multiview', default=None,
                   help='multiview COCO file (default: synthetic multiview)')
    p.add_argument('--work-dir', default='work_dirs/hand_bootstrap')
    args = p.parse_args(argv)
    for name in ('iterations', 'top_n', 'min_keypoints'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.labelled is None or args.multiview is None:
        files = ensure_hands_generated(args.data_root)
        args.labelled = args.labelled or files['labelled']
        args.multiview = args.multiview or files['multiview']
    for f in (args.config, args.labelled, args.multiview):
        if not osp.exists(f):
            sys.exit(f'error: file not found: {f}')
    os.makedirs(args.work_dir, exist_ok=True)
    trained = []
    history = run_bootstrap(
        mmengine_train_fn(args.config, args.data_root, args.train_iters, results=trained),
        mmengine_model_fn(args.config), args.labelled, args.multiview, args.data_root,
        args.work_dir, args.iterations, args.top_n, args.conf_thr, args.inlier_thr,
        args.min_keypoints, args.min_inliers)
    rows = []
    for h, t in zip(history, trained):
        rows.append(dict(detector=f'd_{h["iteration"]}', train_images=t['train_images'],
                         epochs=t['epochs'], **t['metrics'],
                         **{k: h[k] for k in ('selected', 'labelled_views', 'inlier_rate',
                                              'label_err_px', 'label_err_3d') if k in h},
                         checkpoint=t['checkpoint']))
    print('\n| detector | train images | epochs | PCK@0.2 | AUC | EPE | label err (px) |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        nan = float('nan')
        print(f"| {r['detector']} | {r['train_images']} | {r['epochs']} | {r.get('PCK', nan):.3f} "
              f"| {r.get('AUC', float('nan')):.3f} | {r.get('EPE', float('nan')):.2f} "
              f"| {r.get('label_err_px', float('nan')):.2f} |")
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as fh:
        json.dump(rows, fh, indent=1)
    return rows


if __name__ == '__main__':
    main()
