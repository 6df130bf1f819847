"""Hand boxes from body keypoints (Simon et al., "Hand Keypoint Detection in Single Images using
Multiview Bootstrapping", CVPR 2017, arXiv:1704.07809, as implemented in OpenPose).

A hand detector is replaced by a rule on the arm: the hand lies beyond the wrist, along the
forearm, and its size scales with the arm. Two rules are implemented:

* ``'openpose'`` (default) -- OpenPose ``src/openpose/hand/handDetector.cpp``
  (``getHandFromPoseIndexes``): centre = wrist + 0.33 (wrist - elbow); square side
  = 1.5 max(|wrist - elbow|, 0.9 |elbow - shoulder|); no box unless wrist, elbow and shoulder
  all score above 0.03 (``HandDetector::detectHands``, ``threshold = 0.03f``; the ``score_thr``
  argument here).
* ``'paper'`` -- the rule given for the paper's training crops: centre 0.15 of the
  elbow->wrist vector beyond the wrist, side 2.2 B. It is not in OpenPose's code and was not
  checked against the paper's text here; B is taken as the forearm length |wrist - elbow| (an
  interpretation: the only length the body keypoints give that scales like the hand).

Body layouts are found by joint names (``left_shoulder``, ``left_elbow``, ``left_wrist`` and the
right ones): MMPose's COCO-17, COCO-WholeBody (133), Halpe (136) and Halpe-26 dataset infos,
and OpenPose's BODY_25 (``src/openpose/pose/poseParameters.cpp``, ``POSE_BODY_25_BODY_PARTS``).
A keypoint count that matches no layout, or not the layout named, is an error.

The crop the network sees: OpenPose warps exactly the box above to the network input
(``handExtractorCaffe.cpp``, ``cropFrame``: scale = box width / net input side). MMPose's
``GetBBoxCenterScale`` multiplies the box by its ``padding`` (default 1.25), which would make
the crop 1.875 max(...). :func:`hand_instances` and :class:`HandBoxFromBody` therefore divide
the box by that padding (``crop_padding``), so that after ``GetBBoxCenterScale`` the crop is
OpenPose's 1.5 max(...); ``crop_padding=1.0`` writes the OpenPose box itself.

Missing (NaN / non-finite) or low-score joints give no box (``valid`` False, box NaN), never an
error. Boxes are ``(x1, y1, x2, y2)``; everything is vectorised over people.
"""
from functools import lru_cache
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmpose.registry import TRANSFORMS

# rule -> (centre offset beyond the wrist as a fraction of elbow->wrist, side factor,
#          weight of the upper arm in the size reference or None to ignore it).
HAND_BOX_RULES = {
    'openpose': dict(center_ratio=0.33, size_ratio=1.5, upper_arm_ratio=0.9),
    'paper': dict(center_ratio=0.15, size_ratio=2.2, upper_arm_ratio=None),
}
OPENPOSE_SCORE_THR = 0.03
# MMPose's GetBBoxCenterScale default padding: the box factor the top-down pipeline applies.
MMPOSE_BBOX_PADDING = 1.25

ARM_JOINTS = {'left': ('left_shoulder', 'left_elbow', 'left_wrist'),
              'right': ('right_shoulder', 'right_elbow', 'right_wrist')}
# OpenPose's BODY_25 (POSE_BODY_25_BODY_PARTS, without its 26th, background map), in MMPose's
# joint naming.
BODY_25_JOINTS = (
    'nose', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
    'left_elbow', 'left_wrist', 'mid_hip', 'right_hip', 'right_knee', 'right_ankle', 'left_hip',
    'left_knee', 'left_ankle', 'right_eye', 'left_eye', 'right_ear', 'left_ear',
    'left_big_toe', 'left_small_toe', 'left_heel', 'right_big_toe', 'right_small_toe',
    'right_heel')
# layout -> MMPose dataset-info file whose keypoint names are read, or the names themselves.
BODY_LAYOUTS = {
    'coco': 'configs/_base_/datasets/coco.py',
    'coco_wholebody': 'configs/_base_/datasets/coco_wholebody.py',
    'halpe': 'configs/_base_/datasets/halpe.py',
    'halpe26': 'configs/_base_/datasets/halpe26.py',
    'body_25': BODY_25_JOINTS,
}
# keypoint counts of the layouts (checked against the names when they are read)
LAYOUT_NUM_KEYPOINTS = {'coco': 17, 'coco_wholebody': 133, 'halpe': 136, 'halpe26': 26,
                        'body_25': 25}


@lru_cache(maxsize=None)
def layout_joint_names(layout: str) -> Tuple[str, ...]:
    """Joint names of a body layout (see ``BODY_LAYOUTS``)."""
    if layout not in BODY_LAYOUTS:
        raise ValueError(f'unknown body layout {layout!r}; known layouts: '
                         f'{sorted(BODY_LAYOUTS)}')
    src = BODY_LAYOUTS[layout]
    if isinstance(src, tuple):
        return src
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    meta = parse_pose_metainfo(dict(from_file=src))
    return tuple(meta['keypoint_id2name'][i] for i in range(meta['num_keypoints']))


def resolve_layout(layout: Optional[str], num_keypoints: int) -> str:
    """The layout named (checked against the keypoint count), or the one with that count."""
    if layout is None:
        matches = [k for k, n in LAYOUT_NUM_KEYPOINTS.items() if n == num_keypoints]
        if not matches:
            raise ValueError(f'{num_keypoints} body keypoints match no known layout '
                             f'({LAYOUT_NUM_KEYPOINTS}); name the layout or give arms=')
        return matches[0]
    if layout not in LAYOUT_NUM_KEYPOINTS:
        raise ValueError(f'unknown body layout {layout!r}; known layouts: '
                         f'{sorted(LAYOUT_NUM_KEYPOINTS)}')
    if LAYOUT_NUM_KEYPOINTS[layout] != num_keypoints:
        raise ValueError(f'body layout {layout!r} has {LAYOUT_NUM_KEYPOINTS[layout]} keypoints, '
                         f'got {num_keypoints}')
    return layout


def arm_indices(layout: str) -> Dict[str, Tuple[int, int, int]]:
    """``{'left': (shoulder, elbow, wrist), 'right': (...)}`` indices of a layout, by name."""
    names = layout_joint_names(layout)
    if len(names) != LAYOUT_NUM_KEYPOINTS[layout]:
        raise RuntimeError(f'layout {layout!r}: {len(names)} names, expected '
                           f'{LAYOUT_NUM_KEYPOINTS[layout]}')
    return {side: tuple(names.index(n) for n in joints) for side, joints in ARM_JOINTS.items()}


def _check_body(keypoints: np.ndarray,
                scores: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim == 2:
        kpts = kpts[None]
    if kpts.ndim != 3 or kpts.shape[-1] not in (2, 3):
        raise ValueError(f'hand_boxes_from_body: keypoints must be (N, K, 2|3) body keypoints, '
                         f'got shape {np.shape(keypoints)}')
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
                         layout: Optional[str] = None,
                         arms: Optional[Dict[str, Sequence[int]]] = None
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """Left and right hand boxes for every person.

    Args:
        keypoints: ``(N, K, 2)`` or ``(N, K, 3)`` (x, y[, score]) body keypoints; a single
            person may be given as ``(K, 2|3)``.
        scores: ``(N, K)`` keypoint scores; default: the third column, or all ones.
        rule: ``'openpose'`` (default) or ``'paper'``, see the module docstring.
        score_thr: a joint scoring at or below this is missing (OpenPose: 0.03).
        layout: body layout, one of ``BODY_LAYOUTS`` (``'coco'``, ``'coco_wholebody'``,
            ``'halpe'``, ``'halpe26'``, ``'body_25'``); default: the layout with K keypoints.
        arms: explicit ``{'left': (shoulder, elbow, wrist), 'right': (...)}`` indices instead
            of a layout.

    Returns:
        ``boxes`` ``(N, 2, 4)`` xyxy (index 0 left, 1 right; NaN where no box) and ``valid``
        ``(N, 2)`` bool.
    """
    if rule not in HAND_BOX_RULES:
        raise ValueError(f'hand_boxes_from_body: rule={rule!r} is not one of '
                         f'{tuple(HAND_BOX_RULES)}')
    kpts, scores = _check_body(keypoints, scores)
    if arms is None:
        arms = arm_indices(resolve_layout(layout, kpts.shape[1]))
    elif max(max(arms['left']), max(arms['right'])) >= kpts.shape[1]:
        raise ValueError(f'arms {arms} index past the {kpts.shape[1]} keypoints given')
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


def scale_boxes(boxes: np.ndarray, factor) -> np.ndarray:
    """Boxes (..., 4) xyxy scaled by ``factor`` (a number, or (..., 1)) about their centres."""
    center = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = (boxes[..., 2:] - boxes[..., :2]) / 2 * factor
    return np.concatenate([center - half, center + half], axis=-1)


def hand_instances(keypoints: np.ndarray, scores: Optional[np.ndarray] = None,
                   rule: str = 'openpose', score_thr: float = OPENPOSE_SCORE_THR,
                   layout: Optional[str] = None, crop_padding: float = MMPOSE_BBOX_PADDING,
                   sides: Sequence[str] = ('left', 'right')) -> Dict[str, np.ndarray]:
    """One top-down instance per found hand, ready for ``mmpose.apis.inference_topdown``.

    Args:
        keypoints, scores, rule, score_thr, layout: as :func:`hand_boxes_from_body`.
        crop_padding: the ``GetBBoxCenterScale`` padding of the hand model's pipeline (MMPose
            default 1.25): boxes are divided by it so the crop is the rule's box (OpenPose's
            1.5 max(...)); 1.0 gives the rule's box itself.
        sides: which hands to return.

    Returns:
        dict with ``bboxes`` ``(M, 4)`` xyxy (to pass to ``inference_topdown``),
        ``hand_boxes`` ``(M, 4)`` (the rule's boxes), ``person`` ``(M,)`` and ``side``
        ``(M,)`` (0 left, 1 right), people in order, left before right.
    """
    if crop_padding <= 0:
        raise ValueError(f'crop_padding must be > 0, got {crop_padding}')
    bad = [s for s in sides if s not in ARM_JOINTS]
    if bad or not sides:
        raise ValueError(f"sides must name 'left' and/or 'right', got {list(sides)}")
    boxes, valid = hand_boxes_from_body(keypoints, scores, rule, score_thr, layout)
    wanted = np.array([s in sides for s in ('left', 'right')])
    person, side = np.nonzero(valid & wanted[None])
    hand = boxes[person, side].reshape(-1, 4)
    return dict(bboxes=scale_boxes(hand, 1.0 / crop_padding).astype(np.float32),
                hand_boxes=hand.astype(np.float32), person=person, side=side)


@TRANSFORMS.register_module()
class HandBoxFromBody(BaseTransform):
    """MMPose pipeline step: body keypoints -> hand boxes.

    Reads ``results['keypoints']`` ``(N, K, 2)`` and ``results['keypoint_scores']`` (or
    ``keypoints_visible``), writes ``hand_bboxes`` ``(N, 2, 4)`` (the rule's boxes) and
    ``hand_bbox_valid`` ``(N, 2)``. With ``as_bbox=True`` it also writes the hand of ``side``
    as the sample's single instance -- ``bbox`` ``(1, 4)`` (the box divided by
    ``crop_padding``, see the module docstring), ``bbox_score``, ``hand_side`` -- for the next
    top-down steps (``GetBBoxCenterScale``, ``TopdownAffine``: MMPose's top-down transforms take
    one instance per sample). A sample whose ``side`` hand was not found gets an empty
    ``bbox`` ``(0, 4)``. To run both hands of every person, use one pipeline per side, or
    :func:`hand_instances` with ``mmpose.apis.inference_topdown`` (one instance per hand).

    Args:
        rule: ``'openpose'`` (default) or ``'paper'``.
        score_thr: joints scoring at or below it are missing (OpenPose: 0.03).
        layout: body layout (see :func:`hand_boxes_from_body`); default: by keypoint count.
        as_bbox: also write the hand box as ``bbox`` for the next top-down steps.
        side: ``'left'`` or ``'right'``: the hand written as ``bbox`` (needed with
            ``as_bbox``); ``None`` without ``as_bbox``.
        crop_padding: padding of the ``GetBBoxCenterScale`` that follows (default 1.25).
    """

    def __init__(self, rule: str = 'openpose', score_thr: float = OPENPOSE_SCORE_THR,
                 layout: Optional[str] = None, as_bbox: bool = False,
                 side: Optional[str] = None,
                 crop_padding: float = MMPOSE_BBOX_PADDING) -> None:
        super().__init__()
        if rule not in HAND_BOX_RULES:
            raise ValueError(f'HandBoxFromBody: rule={rule!r} is not one of '
                             f'{tuple(HAND_BOX_RULES)}')
        if layout is not None and layout not in BODY_LAYOUTS:
            raise ValueError(f'HandBoxFromBody: unknown body layout {layout!r}; known layouts: '
                             f'{sorted(BODY_LAYOUTS)}')
        if as_bbox and side not in ARM_JOINTS:
            raise ValueError("HandBoxFromBody(as_bbox=True) needs side='left' or 'right' (one "
                             'instance per sample, as the top-down transforms take); for both '
                             'hands use one pipeline per side or hand_instances() with '
                             f'inference_topdown; got side={side!r}')
        if crop_padding <= 0:
            raise ValueError(f'HandBoxFromBody: crop_padding must be > 0, got {crop_padding}')
        self.rule, self.score_thr, self.layout = rule, score_thr, layout
        self.as_bbox, self.side, self.crop_padding = as_bbox, side, crop_padding

    def transform(self, results: dict) -> dict:
        if 'keypoints' not in results:
            raise KeyError('HandBoxFromBody needs results["keypoints"] (body keypoints)')
        scores = results.get('keypoint_scores', results.get('keypoints_visible'))
        boxes, valid = hand_boxes_from_body(results['keypoints'], scores, self.rule,
                                            self.score_thr, self.layout)
        results['hand_bboxes'] = boxes.astype(np.float32)
        results['hand_bbox_valid'] = valid
        if self.as_bbox:
            if len(boxes) != 1:
                raise ValueError('HandBoxFromBody(as_bbox=True) takes one person per sample '
                                 f'(top-down), got {len(boxes)}')
            s = 0 if self.side == 'left' else 1
            box = boxes[valid[:, s], s]
            results['bbox'] = scale_boxes(box, 1.0 / self.crop_padding).astype(
                np.float32).reshape(-1, 4)
            results['hand_side'] = np.full(len(box), s)
            results['bbox_score'] = np.ones(len(box), dtype=np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(rule={self.rule!r}, score_thr={self.score_thr}, '
                f'layout={self.layout!r}, as_bbox={self.as_bbox}, side={self.side!r}, '
                f'crop_padding={self.crop_padding})')
