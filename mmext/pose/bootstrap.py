"""Multiview bootstrapping (Simon et al., "Hand Keypoint Detection in Single Images using
Multiview Bootstrapping", CVPR 2017, arXiv:1704.07809, Sec. 3 / Alg. 1).

One iteration, given frames seen by V calibrated cameras and a detector d_i:

1. detect the keypoints in every view of every frame (:func:`detect_frames`);
2. triangulate every keypoint from the detections scoring >= lambda = 0.2, with RANSAC over view
   pairs and least squares on the inliers (:func:`mmext.pose.triangulation.triangulate_ransac`);
3. score each frame by the sum of its inlier confidences (:func:`score_frame`) and keep the top N
   (:func:`select_top_frames`);
4. reproject the 3D keypoints into every view as new labels and write them, with the labelled
   set, in COCO-keypoint format (:func:`write_labels`);
5. retrain on them: d_{i+1} (:func:`run_bootstrap` calls the ``train_fn`` it is given).

Boxes: the paper crops each view around the hand found from the body keypoints; on the synthetic
rig the hand boxes of the multiview annotation file stand in for them (``bbox`` of each image's
annotation; :mod:`mmext.pose.hand_box` makes such boxes from body keypoints).
"""
import copy
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .triangulation import CONF_THR, TriangulationResult, project, triangulate_ransac

# predict_fn(list of (image path, xyxy box)) -> (keypoints (n, J, 2), scores (n, J))
PredictFn = Callable[[List[tuple]], tuple]


def score_frame(result: TriangulationResult) -> float:
    """The paper's frame score: the sum over keypoints of the inlier views' confidences."""
    return float(np.nansum(result.score))


def select_top_frames(scores: Sequence[float], top_n: int) -> np.ndarray:
    """Indices of the ``top_n`` best-scoring frames, best first (ties: lower index first).

    Args:
        scores: one score per frame (finite).
        top_n: how many to keep (>= 1); more than there are keeps all of them.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f'select_top_frames: scores must be 1-D, got shape {s.shape}')
    if not np.isfinite(s).all():
        raise ValueError(f'select_top_frames: scores must be finite, got {s[~np.isfinite(s)][:3]}')
    if not isinstance(top_n, (int, np.integer)) or top_n < 1:
        raise ValueError(f'select_top_frames: top_n must be an int >= 1, got {top_n!r}')
    order = np.argsort(-s, kind='stable')
    return order[:top_n]


def mmpose_predict_fn(model) -> PredictFn:
    """A :data:`PredictFn` running an MMPose top-down model (``mmpose.apis.init_model``)."""
    from mmpose.apis import inference_topdown

    def predict(items):
        kpts, scores = [], []
        for img_path, box in items:
            sample = inference_topdown(model, img_path, np.asarray(box, np.float32)[None],
                                       bbox_format='xyxy')[0]
            kpts.append(sample.pred_instances.keypoints[0])
            scores.append(sample.pred_instances.keypoint_scores[0])
        return np.stack(kpts), np.stack(scores)

    return predict


def detect_frames(predict_fn: PredictFn, multiview: dict, img_root: str) -> Dict[int, tuple]:
    """Run the detector on every view: ``{frame_id: (views (V,), kpts (V, J, 2), scores (V, J))}``.

    Args:
        predict_fn: see :data:`PredictFn`.
        multiview: :func:`mmext.pose.synthetic_hands.load_multiview` output.
        img_root: directory the image file names are relative to.
    """
    out = {}
    for fid, views in sorted(multiview['frames'].items()):
        vids = sorted(views)
        items = []
        for v in vids:
            x, y, w, h = multiview['anns'][views[v]['id']]['bbox']
            items.append((osp.join(img_root, views[v]['file_name']), (x, y, x + w, y + h)))
        kpts, scores = predict_fn(items)
        out[fid] = (np.array(vids), np.asarray(kpts, np.float64), np.asarray(scores, np.float64))
    return out


def triangulate_frames(detections: Dict[int, tuple], cameras: np.ndarray,
                       conf_thr: float = CONF_THR,
                       inlier_thr: float = 5.0,
                       min_inliers: int = 2) -> Dict[int, TriangulationResult]:
    """:func:`triangulate_ransac` on every frame (cameras indexed by view id)."""
    return {fid: triangulate_ransac(k, s, cameras[vids], conf_thr, inlier_thr, min_inliers)
            for fid, (vids, k, s) in detections.items()}


def reproject_labels(result: TriangulationResult, cameras: np.ndarray, image_size: tuple,
                     min_keypoints: int = 1) -> List[Optional[np.ndarray]]:
    """New labels for every view: ``(J, 3)`` (x, y, v) with v=2 for triangulated keypoints
    inside the image, 0 (and x=y=0) otherwise; None for a view with fewer than
    ``min_keypoints`` labelled keypoints."""
    w, h = image_size
    uv = project(result.points3d, cameras)  # (V, J, 2), NaN for keypoints not triangulated
    labels = []
    for v in range(len(cameras)):
        ok = (np.isfinite(uv[v]).all(-1) & (uv[v] >= 0).all(-1)
              & (uv[v, :, 0] < w) & (uv[v, :, 1] < h))
        if ok.sum() < min_keypoints:
            labels.append(None)
            continue
        lab = np.zeros((uv.shape[1], 3))
        lab[ok, :2] = uv[v, ok]
        lab[ok, 2] = 2
        labels.append(lab)
    return labels


def _coco_ann(ann_id: int, img_id: int, kpts: np.ndarray) -> dict:
    vis = kpts[:, 2] > 0
    x0, y0 = kpts[vis, :2].min(0)
    x1, y1 = kpts[vis, :2].max(0)
    return dict(id=ann_id, image_id=img_id, category_id=1, iscrowd=0,
                bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                area=float((x1 - x0) * (y1 - y0)), num_keypoints=int(vis.sum()),
                keypoints=[round(float(v), 4) for v in kpts.reshape(-1)])


def write_labels(path: str, labelled: dict, multiview: dict, frames: Sequence[int],
                 results: Dict[int, TriangulationResult], min_keypoints: int = 8) -> dict:
    """Write the labelled set plus the reprojected labels of ``frames`` as one COCO json.

    Args:
        path: output file.
        labelled: the labelled COCO dict (kept as it is; its images come first).
        multiview: :func:`mmext.pose.synthetic_hands.load_multiview` output.
        frames: selected frame ids.
        results: triangulation per frame id.
        min_keypoints: views with fewer labelled keypoints get no annotation.

    Returns:
        the written dict (``bootstrap`` block: selected frames, labelled views).
    """
    coco = copy.deepcopy(labelled)
    coco.pop('frames', None)
    next_img = max([im['id'] for im in coco['images']], default=-1) + 1
    next_ann = max([a['id'] for a in coco['annotations']], default=-1) + 1
    cams = multiview['cameras']
    n_views = 0
    for fid in frames:
        views = multiview['frames'][int(fid)]
        vids = sorted(views)
        any_img = views[vids[0]]
        labels = reproject_labels(results[int(fid)], cams[vids],
                                  (any_img['width'], any_img['height']), min_keypoints)
        for v, lab in zip(vids, labels):
            if lab is None:
                continue
            im = dict(views[v], id=next_img, source='bootstrap')
            coco['images'].append(im)
            coco['annotations'].append(_coco_ann(next_ann, next_img, lab))
            next_img, next_ann, n_views = next_img + 1, next_ann + 1, n_views + 1
    coco['bootstrap'] = dict(frames=[int(f) for f in frames], labelled_views=n_views)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as fh:
        json.dump(coco, fh, sort_keys=True)
    return coco


def label_errors(multiview: dict, frames: Sequence[int],
                 results: Dict[int, TriangulationResult]) -> dict:
    """How good the bootstrapped labels are, where the multiview file has exact 3D ground truth:
    mean 3D error (same units as the cameras) and mean reprojection error in pixels."""
    e3, e2 = [], []
    cams = multiview['cameras']
    for fid in frames:
        gt = multiview['points3d'].get(int(fid))
        if gt is None:
            continue
        X = results[int(fid)].points3d
        ok = np.isfinite(X).all(-1)
        if not ok.any():
            continue
        e3.append(np.linalg.norm(X[ok] - gt[ok], axis=-1))
        vids = sorted(multiview['frames'][int(fid)])
        e2.append(np.linalg.norm(project(X[ok], cams[vids]) - project(gt[ok], cams[vids]),
                                 axis=-1).ravel())
    if not e3:
        return dict(label_err_3d=float('nan'), label_err_px=float('nan'))
    return dict(label_err_3d=float(np.concatenate(e3).mean()),
                label_err_px=float(np.concatenate(e2).mean()))


def _detection_errors(multiview: dict, frames: Sequence[int],
                      detections: Dict[int, tuple]) -> float:
    """Mean pixel error of d_i's own detections on the selected frames' views (where the
    multiview file has labels): what the triangulated labels are compared against."""
    errs = []
    for fid in frames:
        vids, kpts, _ = detections[int(fid)]
        for v, k in zip(vids, kpts):
            ann = multiview['anns'].get(multiview['frames'][int(fid)][int(v)]['id'])
            if ann is not None:
                gt = np.array(ann['keypoints'], np.float64).reshape(-1, 3)[:, :2]
                errs.append(np.linalg.norm(k - gt, axis=-1))
    return float(np.concatenate(errs).mean()) if errs else float('nan')


def bootstrap_iteration(predict_fn: PredictFn, multiview: dict, labelled: dict, img_root: str,
                        out_file: str, top_n: int, conf_thr: float = CONF_THR,
                        inlier_thr: float = 5.0, min_keypoints: int = 8,
                        min_inliers: int = 2) -> dict:
    """Steps 1-4 of one iteration; returns its figures (also written next to ``out_file``)."""
    detections = detect_frames(predict_fn, multiview, img_root)
    results = triangulate_frames(detections, multiview['cameras'], conf_thr, inlier_thr,
                                 min_inliers)
    fids = sorted(results)
    scores = [score_frame(results[f]) for f in fids]
    # frames with no triangulated keypoint (score 0) would add no label: never selected
    top = [fids[i] for i in select_top_frames(scores, top_n) if scores[i] > 0]
    coco = write_labels(out_file, labelled, multiview, top, results, min_keypoints)
    n_det = sum(int((s >= conf_thr).sum()) for _, _, s in detections.values())
    n_all = sum(s.size for _, _, s in detections.values())
    n_inl = sum(int(results[f].inliers.sum()) for f in fids)
    det_err = _detection_errors(multiview, top, detections)
    figures = dict(frames=len(fids), selected=len(top),
                   labelled_views=coco['bootstrap']['labelled_views'],
                   detections_above_lambda=n_det / max(n_all, 1),
                   inlier_rate=n_inl / max(n_det, 1),
                   mean_frame_score=float(np.mean(scores)),
                   mean_selected_score=float(np.mean([scores[fids.index(f)] for f in top]))
                   if top else 0.0,
                   triangulated_keypoints=float(np.mean(
                       [np.isfinite(results[f].points3d).all(-1).mean() for f in top]))
                   if top else 0.0,
                   det_err_px=det_err, **label_errors(multiview, top, results))
    with open(osp.splitext(out_file)[0] + '_figures.json', 'w') as fh:
        json.dump(figures, fh, indent=1, sort_keys=True)
    return figures


def run_bootstrap(train_fn: Callable[[str, str, int], str],
                  model_fn: Callable[[str], PredictFn],
                  labelled_ann: str, multiview_ann: str, img_root: str, work_dir: str,
                  iterations: int = 2, top_n: int = 16, conf_thr: float = CONF_THR,
                  inlier_thr: float = 5.0, min_keypoints: int = 8, min_inliers: int = 2,
                  log: Callable[[str], None] = print) -> List[dict]:
    """Train d_0 on the labelled set, then ``iterations`` rounds of bootstrapping.

    Args:
        train_fn: ``train_fn(ann_file, work_dir, i) -> checkpoint`` trains detector d_i on a
            COCO-keypoint file (images relative to ``img_root``).
        model_fn: ``model_fn(checkpoint) -> predict_fn`` (e.g. :func:`mmpose_predict_fn` of
            ``mmpose.apis.init_model``).
        labelled_ann: the labelled single-view set (COCO keypoints).
        multiview_ann: the multiview frames (COCO keypoints + ``cameras``; labels not used,
            except to report the error of the bootstrapped ones).
        img_root: the directory image file names are relative to.
        work_dir: ``iter_<i>/labels.json``, ``iter_<i>/labels_figures.json``, checkpoints.
        iterations: k, the number of bootstrapping rounds (>= 1).
        top_n: frames kept per round (N).
        conf_thr: lambda (paper 0.2).
        inlier_thr: RANSAC reprojection inlier threshold in pixels.
        min_keypoints: views with fewer reprojected keypoints in the image get no label.
        min_inliers: a keypoint needs this many inlier views to be triangulated (2: any
            consistent pair; 3: a third view must confirm it).
        log: where each round's figures are reported.

    Returns:
        one dict per round: ``checkpoint`` of d_i and, for i >= 1, the figures of the labels it
        was trained on.
    """
    from .synthetic_hands import load_multiview
    if iterations < 1:
        raise ValueError(f'run_bootstrap: iterations must be >= 1, got {iterations}')
    multiview = load_multiview(multiview_ann)
    with open(labelled_ann) as fh:
        labelled = json.load(fh)
    history = [dict(iteration=0, ann_file=labelled_ann,
                    checkpoint=train_fn(labelled_ann, osp.join(work_dir, 'd0'), 0))]
    log(f'bootstrap: d_0 trained on {len(labelled["images"])} labelled views -> '
        f'{history[0]["checkpoint"]}')
    for i in range(1, iterations + 1):
        labels = osp.join(work_dir, f'iter_{i}', 'labels.json')
        figures = bootstrap_iteration(model_fn(history[-1]['checkpoint']), multiview, labelled,
                                      img_root, labels, top_n, conf_thr, inlier_thr, min_keypoints,
                                      min_inliers)
        log(f'bootstrap iteration {i}: ' + ', '.join(
            f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in figures.items()))
        ckpt = train_fn(labels, osp.join(work_dir, f'd{i}'), i)
        history.append(dict(iteration=i, ann_file=labels, checkpoint=ckpt, **figures))
    return history


def scale_schedule(cfg, max_epochs: int) -> None:
    """Fit ``cfg``'s epoch-based schedule to ``max_epochs``: warm-up kept, every epoch-based
    milestone / end scaled by ``max_epochs / old max_epochs``."""
    old = cfg.train_cfg.max_epochs
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = max_epochs
    for sched in cfg.get('param_scheduler', []):
        if not sched.get('by_epoch', True):
            continue
        if 'milestones' in sched:
            sched['milestones'] = [max(1, round(m * max_epochs / old)) for m in sched['milestones']]
        if 'end' in sched:
            sched['end'] = max_epochs


def mmengine_train_fn(config: str, img_root: str, train_iters: Optional[int] = None,
                      cfg_options: Optional[dict] = None, results: Optional[list] = None):
    """A ``train_fn`` for :func:`run_bootstrap` that trains ``config`` with an mmengine Runner
    (what ``tools/train.py`` builds) on a given annotation file, then evaluates it on the
    config's validation set.

    Args:
        config: an MMPose top-down config (e.g. ``configs/hand/cpm_hand_synthetic-96x96.py``).
        img_root: the ``data_root`` the annotation files' image names are relative to.
        train_iters: if given, every d_i trains for about this many iterations (the epochs are
            set from the training-set size) so that the detectors get the same compute.
        cfg_options: extra ``--cfg-options``-style overrides.
        results: if given, ``dict(iteration, checkpoint, metrics, train_images)`` is appended
            after every training.
    """
    import json as _json
    import math

    from mmengine.config import Config
    from mmengine.runner import Runner

    def train(ann_file: str, work_dir: str, i: int) -> str:
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        ds = cfg.train_dataloader.dataset
        ds.ann_file = osp.abspath(ann_file)
        ds.data_root = img_root
        for loader in ('val_dataloader', 'test_dataloader'):
            cfg[loader].dataset.data_root = img_root
        with open(ann_file) as fh:
            n_images = len(_json.load(fh)['annotations'])
        if train_iters:
            per_epoch = math.ceil(n_images / cfg.train_dataloader.batch_size)
            scale_schedule(cfg, max(1, round(train_iters / per_epoch)))
        cfg.work_dir = work_dir
        cfg.experiment_name = f'bootstrap_d{i}_{osp.basename(osp.normpath(work_dir))}'
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', save_best=None,
                                            interval=cfg.train_cfg.max_epochs, max_keep_ckpts=1)
        # evaluate once, after the last epoch (mmengine's loop always validates the last epoch)
        cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs
        runner = Runner.from_cfg(cfg)
        runner.train()
        hub = runner.message_hub
        metrics = {k[len('val/'):]: hub.get_scalar(k).current() for k in hub.log_scalars
                   if k.startswith('val/') and k[len('val/'):] in ('PCK', 'AUC', 'EPE')}
        if not metrics:
            metrics = runner.val_loop.run()
        ckpt = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
        if results is not None:
            results.append(dict(iteration=i, checkpoint=ckpt, train_images=n_images,
                                epochs=cfg.train_cfg.max_epochs,
                                metrics={k: float(v) for k, v in metrics.items()}))
        return ckpt

    return train


def mmengine_model_fn(config: str, device: str = 'cpu') -> Callable[[str], PredictFn]:
    """A ``model_fn`` for :func:`run_bootstrap`: ``mmpose.apis.init_model`` + inference."""
    def load(checkpoint: str) -> PredictFn:
        from mmpose.apis import init_model
        return mmpose_predict_fn(init_model(config, checkpoint, device=device))
    return load
