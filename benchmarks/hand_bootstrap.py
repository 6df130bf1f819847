"""Does multiview bootstrapping raise PCK? d_0, d_1, d_2 on the synthetic multiview hands.

    python benchmarks/hand_bootstrap.py [--iterations 2] [--train-iters 150] [--top-n 24]

Simon et al. (CVPR 2017, arXiv:1704.07809) train d_0 on a few labelled views, triangulate its
detections over a multi-camera rig (lambda = 0.2, RANSAC over view pairs), keep the best N frames,
reproject them as labels and retrain; they report that every round raises PCK. Here, in one run:

* d_0 is the synthetic hand CPM (configs/hand/cpm_hand_synthetic-96x96.py) trained on the
  'labelled' split (48 single views); d_i (i >= 1) is trained *from scratch* (as the paper
  retrains) on the labelled views plus the reprojected labels of round i. Every d_i gets the same
  number of iterations (``--train-iters``), so a gain comes from the labels, not from more compute;
* every d_i is evaluated on the 'val' split (96 single views): MMPose's PCK@0.2 (of the box), AUC
  (0-30 px), EPE (px). Ratios are against d_0 from this run;
* per round: how many views got labels, the inlier rate, and the mean pixel error of the
  bootstrapped labels vs the exact ground truth, next to d_i's own detections on the same views;
* triangulation speed (keypoints/s): RANSAC over the 15 view pairs of 6 views + refinement, per
  frame (21 keypoints a call, as bootstrapping uses it) and batched, vs the plain DLT.
"""
import argparse
import json
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmext  # noqa: E402,F401
from mmext.pose.bootstrap import mmengine_model_fn, mmengine_train_fn, run_bootstrap  # noqa: E402
from mmext.pose.synthetic_hands import DATA_ROOT, camera_ring, ensure_hands_generated  # noqa: E402
from mmext.pose.triangulation import project, triangulate_dlt, triangulate_ransac  # noqa: E402

CONFIG = 'configs/hand/cpm_hand_synthetic-96x96.py'


def triangulation_speed(frames: int = 300, views: int = 6, seed: int = 0) -> dict:
    """keypoints/s of the DLT and of RANSAC triangulation on noisy detections with one bad view."""
    rng = np.random.default_rng(seed)
    cams = camera_ring(views, rng, 128)
    X = rng.normal(scale=0.05, size=(frames, 21, 3))
    x = np.stack([project(X[f], cams) for f in range(frames)])  # (F, V, 21, 2)
    x += rng.normal(scale=1.0, size=x.shape)
    x[:, 2] += 25.0  # a wrong view
    s = rng.uniform(0.3, 1.0, size=x.shape[:3])
    out = {}
    t = time.perf_counter()
    for f in range(frames):
        triangulate_dlt(x[f], cams)
    out['DLT, per frame'] = frames * 21 / (time.perf_counter() - t)
    t = time.perf_counter()
    for f in range(frames):
        triangulate_ransac(x[f], s[f], cams, inlier_thr=4.0)
    out['RANSAC + refine, per frame'] = frames * 21 / (time.perf_counter() - t)
    xb = x.transpose(1, 0, 2, 3).reshape(views, -1, 2)
    sb = s.transpose(1, 0, 2).reshape(views, -1)
    t = time.perf_counter()
    r = triangulate_ransac(xb, sb, cams, inlier_thr=4.0)
    out['RANSAC + refine, batched'] = xb.shape[1] / (time.perf_counter() - t)
    err = np.linalg.norm(r.points3d - X.reshape(-1, 3), axis=-1)
    out['_err_mm'] = 1000 * float(np.nanmean(err))
    out['_bad_view_rejected'] = float(1 - r.inliers[2].mean())
    return out


def simulated_labels(multiview_ann: str, img_root: str, work_dir: str, top_n: int,
                     inlier_thr: float, min_inliers: int, sigma: float = 2.0,
                     p_outlier: float = 0.3, seed: int = 0) -> dict:
    """Label quality of one bootstrapping round with a simulated detector (no training): exact
    2D + N(0, sigma^2) px noise, and with probability ``p_outlier`` a gross error (uniform in the
    hand box); confidences U(0.3, 0.9) whatever the error (the worst case for the score)."""
    from mmext.pose.bootstrap import bootstrap_iteration
    from mmext.pose.synthetic_hands import load_multiview
    mv = load_multiview(multiview_ann)
    rng = np.random.default_rng(seed)
    by_path = {}
    for im in mv['coco']['images']:
        ann = mv['anns'][im['id']]
        k = np.array(ann['keypoints']).reshape(-1, 3)[:, :2] + rng.normal(0, sigma, (21, 2))
        x, y, w, h = ann['bbox']
        out = rng.random(21) < p_outlier
        k[out] = np.stack([rng.uniform(x, x + w, out.sum()), rng.uniform(y, y + h, out.sum())], 1)
        by_path[osp.join(img_root, im['file_name'])] = (k, rng.uniform(0.3, 0.9, 21))

    def predict(items):
        ks, ss = zip(*(by_path[p] for p, _ in items))
        return np.stack(ks), np.stack(ss)

    empty = dict(images=[], annotations=[], categories=mv['coco']['categories'])
    return bootstrap_iteration(predict, mv, empty, img_root,
                               osp.join(work_dir, 'simulated', 'labels.json'), top_n,
                               inlier_thr=inlier_thr, min_inliers=min_inliers)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--iterations', type=int, default=2)
    p.add_argument('--train-iters', type=int, default=150)
    p.add_argument('--top-n', type=int, default=24)
    p.add_argument('--inlier-thr', type=float, default=4.0)
    p.add_argument('--min-inliers', type=int, default=2)
    p.add_argument('--data-root', default=DATA_ROOT)
    p.add_argument('--work-dir', default='work_dirs/hand_bootstrap/benchmark')
    args = p.parse_args()
    t0 = time.time()
    speed = triangulation_speed()
    files = ensure_hands_generated(args.data_root)
    simulated = {p: simulated_labels(files['multiview'], args.data_root, args.work_dir,
                                     args.top_n, args.inlier_thr, args.min_inliers, p_outlier=p)
                 for p in (0.0, 0.2, 0.4)}
    trained = []
    history = run_bootstrap(
        mmengine_train_fn(CONFIG, args.data_root, args.train_iters,
                          cfg_options={'randomness': dict(seed=0)}, results=trained),
        mmengine_model_fn(CONFIG), files['labelled'], files['multiview'], args.data_root,
        args.work_dir, args.iterations, args.top_n, inlier_thr=args.inlier_thr,
        min_inliers=args.min_inliers)
    base = trained[0]['metrics']
    print(f'\nMultiview bootstrapping, synthetic hands (6 cameras, 48 multiview frames, '
          f'{args.top_n} kept per round), hand CPM 96x96 (6 stages), {args.train_iters} '
          f'iterations per detector, from scratch, CPU; val: 96 single views')
    print('| detector | train views | PCK@0.2 | AUC | EPE (px) | PCK / d_0 | AUC / d_0 | '
          'EPE / d_0 |'
          ' labelled views | inlier rate | label err (px) | d_{i-1} det err (px) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for h, t in zip(history, trained):
        m = t['metrics']
        extra = ('| - | - | - | - |' if h['iteration'] == 0 else
                 f"| {h['labelled_views']} | {h['inlier_rate']:.3f} | {h['label_err_px']:.2f} | "
                 f"{h['det_err_px']:.2f} |")
        print(f"| d_{h['iteration']} | {t['train_images']} | {m['PCK']:.3f} | {m['AUC']:.3f} | "
              f"{m['EPE']:.2f} | {m['PCK'] / base['PCK']:.2f}x | {m['AUC'] / base['AUC']:.2f}x | "
              f"{m['EPE'] / base['EPE']:.2f}x " + extra)
    print(f'\nLabel quality of one round with a simulated detector (2 px noise + gross outliers, '
          f'confidence unrelated to error; top {args.top_n} of 48 frames), no training:')
    print('| outliers | detection err (px) | label err (px) | label / detection | inlier rate | '
          'labelled views |')
    print('|---|---|---|---|---|---|')
    for p, f in simulated.items():
        print(f"| {p:.0%} | {f['det_err_px']:.2f} | {f['label_err_px']:.2f} | "
              f"{f['label_err_px'] / f['det_err_px']:.2f}x | {f['inlier_rate']:.3f} | "
              f"{f['labelled_views']} |")
    ref = speed['DLT, per frame']
    print('\nTriangulation speed (6 views, 21 keypoints per frame, 1 px noise, one view off by '
          '25 px;'
          f" mean 3D error {speed['_err_mm']:.2f} mm, bad view rejected for "
          f"{100 * speed['_bad_view_rejected']:.1f} % of keypoints)")
    print('| method | keypoints/s | vs DLT per frame |')
    print('|---|---|---|')
    for k, v in speed.items():
        if not k.startswith('_'):
            print(f'| {k} | {v:,.0f} | {v / ref:.2f}x |')
    print(f'\ntotal {time.time() - t0:.0f} s')
    with open(osp.join(args.work_dir, 'benchmark.json'), 'w') as fh:
        json.dump(dict(history=history, trained=trained, speed=speed, simulated=simulated), fh,
                  indent=1, default=str)


if __name__ == '__main__':
    main()
