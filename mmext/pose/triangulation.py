"""Multiview triangulation for hand keypoints: DLT, RANSAC over view pairs, least-squares
refinement on the inliers, reprojection.

Simon et al., "Hand Keypoint Detection in Single Images using Multiview Bootstrapping",
CVPR 2017 (arXiv:1704.07809), Sec. 3: every keypoint is triangulated from the views where the
detector's confidence is at least lambda = 0.2, with RANSAC over the views (a pair of views gives a
hypothesis, the other views vote by reprojection error) and least squares on the inliers. The
DLT is the homogeneous linear method (Hartley & Zisserman, "Multiple View Geometry", Sec. 12.2),
with each view's rows normalised so that views weigh alike whatever the camera's scale.

All functions are vectorised over keypoints (and over view pairs for RANSAC); shapes are
``points2d (V, J, 2)``, ``cameras (V, 3, 4)``, ``points3d (J, 3)``.
"""
from itertools import combinations
from typing import NamedTuple, Optional

import numpy as np

CONF_THR = 0.2  # the paper's lambda: detections below it take no part in triangulation


def check_cameras(cameras: np.ndarray) -> np.ndarray:
    """``(V, 3, 4)`` finite float64 projection matrices, V >= 2, or ValueError."""
    P = np.asarray(cameras, dtype=np.float64)
    if P.ndim != 3 or P.shape[1:] != (3, 4):
        raise ValueError(f'cameras must be 3x4 projection matrices stacked as (V, 3, 4), got '
                         f'shape {np.shape(cameras)}')
    if P.shape[0] < 2:
        raise ValueError(f'triangulation needs at least 2 views, got {P.shape[0]}')
    if not np.isfinite(P).all():
        raise ValueError('cameras contain NaN or inf')
    return P


def _check_points(points2d: np.ndarray, n_views: int) -> np.ndarray:
    x = np.asarray(points2d, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, None]
    if x.ndim != 3 or x.shape[0] != n_views or x.shape[2] != 2:
        raise ValueError(f'points2d must be (V={n_views}, J, 2) (or (V, 2)), got shape '
                         f'{np.shape(points2d)}')
    return x


def _dlt(x: np.ndarray, P: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Batched weighted DLT. x (..., V, 2), P (..., V, 3, 4), w (..., V) -> (..., 3)."""
    rows = np.concatenate([x[..., 0:1, None] * P[..., 2:3, :] - P[..., 0:1, :],
                           x[..., 1:2, None] * P[..., 2:3, :] - P[..., 1:2, :]], axis=-2)
    # (..., V, 2, 4); normalise each view's rows so a camera's overall scale does not weigh it
    norm = np.linalg.norm(rows, axis=-1, keepdims=True)
    rows = rows / np.where(norm > 0, norm, 1) * w[..., None, None]
    A = rows.reshape(*rows.shape[:-3], -1, 4)
    _, _, vt = np.linalg.svd(A)
    X = vt[..., -1, :]
    with np.errstate(divide='ignore', invalid='ignore'):
        return X[..., :3] / X[..., 3:4]


def triangulate_dlt(points2d: np.ndarray, cameras: np.ndarray,
                    weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Linear (DLT) triangulation of J points seen in V views.

    Args:
        points2d: ``(V, J, 2)`` pixel coordinates (or ``(V, 2)`` for one point).
        cameras: ``(V, 3, 4)`` projection matrices.
        weights: ``(V, J)`` non-negative weights (0 leaves a view out), default all 1.

    Returns:
        ``(J, 3)`` points (NaN where fewer than 2 views have weight).
    """
    P = check_cameras(cameras)
    x = _check_points(points2d, len(P))
    w = np.ones(x.shape[:2]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape[:2]:
        raise ValueError(f'weights must be (V, J) = {x.shape[:2]}, got {w.shape}')
    used = w > 0
    if not np.isfinite(x[used]).all():
        bad = np.argwhere(~np.isfinite(x).all(-1) & used)[0]
        raise ValueError(f'points2d has NaN/inf at view {bad[0]}, keypoint {bad[1]}')
    x = np.where(used[..., None], x, 0.0)
    X = _dlt(x.transpose(1, 0, 2), np.broadcast_to(P, (x.shape[1],) + P.shape), w.T)
    X[used.sum(0) < 2] = np.nan
    return X


def project(points3d: np.ndarray, cameras: np.ndarray) -> np.ndarray:
    """Project ``(J, 3)`` points with ``(V, 3, 4)`` cameras: ``(V, J, 2)`` pixels."""
    P = check_cameras(cameras) if np.ndim(cameras) == 3 and len(cameras) >= 2 else np.asarray(
        cameras, dtype=np.float64).reshape(-1, 3, 4)
    X = np.asarray(points3d, dtype=np.float64)
    Xh = np.concatenate([X, np.ones(X.shape[:-1] + (1,))], axis=-1)
    x = np.einsum('vij,...j->v...i', P, Xh)
    with np.errstate(divide='ignore', invalid='ignore'):
        return x[..., :2] / x[..., 2:3]


def _depths(points3d: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Depth sign of points in every view (> 0 in front), P normalised so det(M) > 0."""
    sign = np.sign(np.linalg.det(P[:, :, :3]))
    Xh = np.concatenate([points3d, np.ones(points3d.shape[:-1] + (1,))], axis=-1)
    d = np.einsum('vj,...j->v...', P[:, 2], Xh)
    return d * sign.reshape((-1,) + (1,) * (d.ndim - 1))


class TriangulationResult(NamedTuple):
    """What :func:`triangulate_ransac` returns.

    points3d: ``(J, 3)``, NaN where a keypoint could not be triangulated.
    inliers: ``(V, J)`` bool, the views that support each keypoint.
    reproj_error: ``(V, J)`` pixel distance between the reprojection and the detection.
    score: ``(J,)`` sum of inlier confidences (the paper's keypoint score; 0 if none).
    """
    points3d: np.ndarray
    inliers: np.ndarray
    reproj_error: np.ndarray
    score: np.ndarray


def triangulate_ransac(points2d: np.ndarray, scores: np.ndarray, cameras: np.ndarray,
                       conf_thr: float = CONF_THR, inlier_thr: float = 5.0,
                       min_inliers: int = 2) -> TriangulationResult:
    """RANSAC triangulation over all view pairs, then DLT on the inliers.

    Every pair of views whose detections pass ``conf_thr`` gives a hypothesis; views whose
    reprojection error is under ``inlier_thr`` pixels (and that see the point in front of the
    camera) are its inliers. The hypothesis with most inliers (ties: least summed error) wins and
    is refined by least squares (DLT) on its inliers; inliers are then recomputed. With V views
    all C(V, 2) pairs are tried, which is exhaustive for the camera counts of a capture dome.

    Args:
        points2d: ``(V, J, 2)`` detections.
        scores: ``(V, J)`` detection confidences.
        cameras: ``(V, 3, 4)`` projection matrices.
        conf_thr: detections scoring below it are ignored (the paper's lambda = 0.2).
        inlier_thr: reprojection error in pixels under which a view is an inlier.
        min_inliers: keypoints with fewer inliers are NaN.

    Returns:
        :class:`TriangulationResult`.
    """
    P = check_cameras(cameras)
    x = _check_points(points2d, len(P))
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != x.shape[:2]:
        raise ValueError(f'scores must be (V, J) = {x.shape[:2]}, got {s.shape}')
    if inlier_thr <= 0:
        raise ValueError(f'inlier_thr must be > 0 pixels, got {inlier_thr}')
    if min_inliers < 2:
        raise ValueError(f'min_inliers must be >= 2, got {min_inliers}')
    if np.isnan(s).any():
        bad = np.argwhere(np.isnan(s))[0]
        raise ValueError(f'scores has NaN at view {bad[0]}, keypoint {bad[1]}')
    usable = s >= conf_thr
    finite = np.isfinite(x).all(-1)
    if (usable & ~finite).any():
        bad = np.argwhere(usable & ~finite)[0]
        raise ValueError(f'points2d has NaN/inf at view {bad[0]}, keypoint {bad[1]} whose score '
                         f'{s[bad[0], bad[1]]:.3f} >= conf_thr={conf_thr} (give missing detections '
                         f'a score below conf_thr)')
    V, J = x.shape[:2]
    x0 = np.where(finite[..., None], x, 0.0)
    pairs = np.array(list(combinations(range(V), 2)))  # (Q, 2)
    # hypotheses: (Q, J, 3) from each pair of views
    xp = x0[pairs].transpose(0, 2, 1, 3)  # (Q, J, 2, 2)
    Pp = np.broadcast_to(P[pairs][:, None], (len(pairs), J, 2, 3, 4))
    hyp = _dlt(xp, Pp, np.ones(xp.shape[:-1]))
    pair_ok = usable[pairs[:, 0]] & usable[pairs[:, 1]]  # (Q, J)
    err = np.linalg.norm(project(hyp, P) - x0[:, None], axis=-1)  # (V, Q, J)
    inl = (err < inlier_thr) & usable[:, None] & (_depths(hyp, P) > 0) & pair_ok[None]
    count = inl.sum(0)  # (Q, J)
    cost = np.where(inl, err, 0).sum(0) / np.maximum(count, 1)
    best = _best_pair(count, cost)  # (J,)
    best_inl = inl[:, best, np.arange(J)]  # (V, J)
    X = _refine(x0, P, best_inl)
    # recompute the inliers against the refined point (it may gain or lose a view)
    err = np.linalg.norm(project(X, P) - x0, axis=-1)
    inliers = (err < inlier_thr) & usable & (_depths(X, P) > 0)
    inliers &= np.isfinite(err)
    enough = inliers.sum(0) >= min_inliers
    X_final = _refine(x0, P, inliers)
    X_final[~enough] = np.nan
    inliers[:, ~enough] = False
    err = np.linalg.norm(project(X_final, P) - x0, axis=-1)
    score = np.where(inliers, s, 0).sum(0)
    return TriangulationResult(X_final, inliers, err, score)


def _best_pair(count: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Per keypoint, the hypothesis with most inliers, ties broken by least mean error."""
    key = count - cost / (cost.max() + 1.0) if cost.size else count.astype(float)
    return np.argmax(key, axis=0)


def _refine(x: np.ndarray, P: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """DLT (linear least squares) on the views in ``mask`` (V, J); NaN with fewer than 2."""
    J = x.shape[1]
    X = _dlt(x.transpose(1, 0, 2), np.broadcast_to(P, (J,) + P.shape), mask.T.astype(float))
    X[mask.sum(0) < 2] = np.nan
    return X
