"""Hand boxes from body keypoints (Simon et al., "Hand Keypoint Detection in Single Images using
Multiview Bootstrapping", CVPR 2017, arXiv:1704.07809, as implemented in OpenPose).

A hand detector is replaced by a rule on the arm: the hand lies beyond the wrist, along the
forearm, and its size scales with the arm. Two rules are implemented:

* ``'openpose'`` (default) -- OpenPose ``src/openpose/hand/handDetector.cpp``
  (``getHandFromPoseIndexes``): centre = wrist + 0.33 (wrist - elbow); square side
  = 1.5 max(|wrist - elbow|, 0.9 |elbow - shoulder|). Joints must score above 0.03, OpenPose's
  threshold in ``HandDetector::detectHands`` (taken from the OpenPose source as we recall it;
  it is the ``score_thr`` argument, so a user can change it).
* ``'paper'`` -- the rule summarised from the paper in ../shared/REFERENCE.md: centre 0.15 of the
  elbow->wrist vector beyond the wrist, side 2.2 B. The paper's B is a hand-size reference; here B
  is the forearm length |wrist - elbow| (our interpretation: it is the only length the body
  keypoints give that scales like the hand).

Missing (NaN / non-finite) or low-score joints give no box (``valid`` False, box NaN), never an
error. Boxes are ``(x1, y1, x2, y2)``; everything is vectorised over people.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmpose.registry import TRANSFORMS

# COCO-17 body keypoint indices (shoulder, elbow, wrist) per side.
COCO17_ARMS = {'left': (5, 7, 9), 'right': (6, 8, 10)}

# rule -> (centre offset beyond the wrist as a fraction of elbow->wrist, side factor,
#          weight of the upper arm in the size reference or None to ignore it).
HAND_BOX_RULES = {
    'openpose': dict(center_ratio=0.33, size_ratio=1.5, upper_arm_ratio=0.9),
    'paper': dict(center_ratio=0.15, size_ratio=2.2, upper_arm_ratio=None),
}
OPENPOSE_SCORE_THR = 0.03


def _check_body(keypoints: np.ndarray,
                scores: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim == 2:
        kpts = kpts[None]
    if kpts.ndim != 3 or kpts.shape[-1] not in (2, 3) or kpts.shape[1] < 11:
        raise ValueError(f'hand_boxes_from_body: keypoints must be (N, K>=11, 2|3) COCO-17 body '
                         f'keypoints, got shape {np.shape(keypoints)}')
    if scores is None:
        scores = kpts[..., 2] if kpts.shape[-1] == 3 else np.ones(kpts.shape[:2])
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[None]
    if scores.shape != kpts.shape[:2]:
        raise ValueError(f'hand_boxes_from_body: scores shape {scores.shape} does not match '
                         f'keypoints {kpts.shape[:2]}')
    return kpts[..., :2], scores


def hand_boxes_from_body(keypoints: np.ndarray,
                         scores: Optional[np.ndarray] = None,
                         rule: str = 'openpose',
                         score_thr: float = OPENPOSE_SCORE_THR,
                         arms: Dict[str, Sequence[int]] = COCO17_ARMS
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """Left and right hand boxes for every person.

    Args:
        keypoints: ``(N, K, 2)`` or ``(N, K, 3)`` (x, y[, score]) body keypoints, COCO-17 order by
            default; a single person may be given as ``(K, 2|3)``.
        scores: ``(N, K)`` keypoint scores; default: the third column, or all ones.
        rule: ``'openpose'`` (default) or ``'paper'``, see the module docstring.
        score_thr: a joint scoring at or below this is missing (OpenPose: 0.03).
        arms: ``{'left': (shoulder, elbow, wrist), 'right': (...)}`` indices.

    Returns:
        ``boxes`` ``(N, 2, 4)`` xyxy (index 0 left, 1 right; NaN where no box) and ``valid``
        ``(N, 2)`` bool.
    """
    if rule not in HAND_BOX_RULES:
        raise ValueError(f'hand_boxes_from_body: rule={rule!r} is not one of '
                         f'{tuple(HAND_BOX_RULES)}')
    kpts, scores = _check_body(keypoints, scores)
    params = HAND_BOX_RULES[rule]
    boxes = np.full((kpts.shape[0], 2, 4), np.nan)
    valid = np.zeros((kpts.shape[0], 2), dtype=bool)
    for side, (s_i, e_i, w_i) in enumerate((arms['left'], arms['right'])):
        shoulder, elbow, wrist = kpts[:, s_i], kpts[:, e_i], kpts[:, w_i]
        idx = [w_i, e_i] + ([s_i] if params['upper_arm_ratio'] is not None else [])
        ok = (np.isfinite(kpts[:, idx]).all(axis=(1, 2))
              & np.isfinite(scores[:, idx]).all(axis=1) & (scores[:, idx] > score_thr).all(axis=1))
        forearm = wrist - elbow
        center = wrist + params['center_ratio'] * forearm
        size_ref = np.linalg.norm(forearm, axis=-1)
        if params['upper_arm_ratio'] is not None:
            size_ref = np.maximum(size_ref, params['upper_arm_ratio']
                                  * np.linalg.norm(elbow - shoulder, axis=-1))
        half = params['size_ratio'] * size_ref / 2
        ok &= half > 0  # wrist on the elbow (and no upper arm): no direction, no size
        box = np.concatenate([center - half[:, None], center + half[:, None]], axis=-1)
        boxes[ok, side] = box[ok]
        valid[:, side] = ok
    return boxes, valid


@TRANSFORMS.register_module()
class HandBoxFromBody(BaseTransform):
    """MMPose pipeline step: body keypoints -> left/right hand boxes.

    Reads ``results['keypoints']`` ``(N, 17, 2)`` and ``results['keypoint_scores']`` (or
    ``keypoints_visible``), writes ``hand_bboxes`` ``(N, 2, 4)``, ``hand_bbox_valid`` ``(N, 2)``
    and, with ``as_bbox=True``, replaces ``bbox`` by the valid hand boxes (``M, 4``, plus
    ``hand_side`` ``(M,)``: 0 left, 1 right) so that a top-down hand model's
    ``GetBBoxCenterScale`` / ``TopdownAffine`` crop the hands.

    Args:
        rule: ``'openpose'`` (default) or ``'paper'``.
        score_thr: joints scoring at or below it are missing (OpenPose: 0.03).
        as_bbox: also write the boxes as ``bbox`` for the next top-down steps.
    """

    def __init__(self, rule: str = 'openpose', score_thr: float = OPENPOSE_SCORE_THR,
                 as_bbox: bool = False) -> None:
        super().__init__()
        if rule not in HAND_BOX_RULES:
            raise ValueError(f'HandBoxFromBody: rule={rule!r} is not one of '
                             f'{tuple(HAND_BOX_RULES)}')
        self.rule, self.score_thr, self.as_bbox = rule, score_thr, as_bbox

    def transform(self, results: dict) -> dict:
        if 'keypoints' not in results:
            raise KeyError('HandBoxFromBody needs results["keypoints"] (body keypoints)')
        scores = results.get('keypoint_scores', results.get('keypoints_visible'))
        boxes, valid = hand_boxes_from_body(results['keypoints'], scores, self.rule, self.score_thr)
        results['hand_bboxes'] = boxes.astype(np.float32)
        results['hand_bbox_valid'] = valid
        if self.as_bbox:
            results['bbox'] = boxes[valid].astype(np.float32).reshape(-1, 4)
            results['hand_side'] = np.nonzero(valid)[1]
            results['bbox_score'] = np.ones(len(results['bbox']), dtype=np.float32)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(rule={self.rule!r}, score_thr={self.score_thr})'
