"""Body -> hands inference (Simon et al., CVPR 2017, arXiv:1704.07809, as run by OpenPose):
body keypoints (from an MMPose body model, any callable, or annotations) -> left/right hand boxes
(:func:`mmext.pose.hand_box.hand_instances`, one top-down instance per hand) -> hand keypoints
from a top-down MMPose hand model through ``mmpose.apis.inference_topdown``.

As OpenPose's ``HandExtractorCaffe::forwardPass`` (``src/openpose/hand/handExtractorCaffe.cpp``):

* the crop is the hand box itself (1.5 max(...) for the OpenPose rule): the boxes are divided by
  the ``GetBBoxCenterScale`` padding of the hand model's test pipeline (``crop_padding``);
* left hands are mirrored (``mirrorImage = (hand == 0)``), for networks trained on right hands:
  ``flip_left`` (default: the hand model's ``test_cfg.mirror_left``, which the OpenPose hand
  configs set);
* multi-scale test: ``hand_scale_number`` crops of sides ``round(side * s) // 2 * 2`` for
  ``s = 1 - range / 2 + range * i / (number - 1)``, keeping per hand the scale whose keypoints
  have the highest mean score (OpenPose's flags ``--hand_scale_number``, ``--hand_scale_range``;
  its best results: 6 and 0.4, ``include/openpose/flags.hpp``).
"""
from typing import Callable, Optional, Union

import numpy as np

from .hand_box import MMPOSE_BBOX_PADDING, OPENPOSE_SCORE_THR, hand_instances, scale_boxes

NUM_HAND_KEYPOINTS = 21


def _load_image(img: Union[str, np.ndarray]) -> np.ndarray:
    if isinstance(img, str):
        import mmcv
        return mmcv.imread(img)
    if not isinstance(img, np.ndarray) or img.ndim != 3:
        raise TypeError(f'img must be a path or an (H, W, 3) array, got {type(img).__name__}')
    return img


def pipeline_bbox_padding(model) -> float:
    """The ``GetBBoxCenterScale`` padding of a model's test pipeline (MMPose default 1.25)."""
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        return MMPOSE_BBOX_PADDING
    for step in cfg.test_dataloader.dataset.pipeline:
        if step.get('type') == 'GetBBoxCenterScale':
            return float(step.get('padding', MMPOSE_BBOX_PADDING))
    return 1.0


def openpose_scales(number: int, scale_range: float) -> np.ndarray:
    """OpenPose's hand test scales: ``1 - range/2 + range * i / (number - 1)``; [1] for one."""
    if not isinstance(number, int) or number < 1:
        raise ValueError(f'hand_scale_number must be an int >= 1, got {number!r}')
    if number == 1:
        return np.ones(1)
    if not 0 <= scale_range < 2:
        raise ValueError(f'hand_scale_range must lie in [0, 2), got {scale_range}')
    return 1 - scale_range / 2 + scale_range * np.arange(number) / (number - 1)


class HandsFromBody:
    """Hand keypoints of every person in an image, found from their body keypoints.

    Args:
        hand_model: an MMPose top-down hand model (``mmpose.apis.init_model``).
        body_model: an MMPose top-down body model, or a callable
            ``body(img) -> (keypoints (N, K, 2), scores (N, K))``; None if body keypoints are
            always given to :meth:`__call__`.
        rule: hand-box rule, ``'openpose'`` (default) or ``'paper'``.
        score_thr: body joints scoring at or below it are missing (OpenPose: 0.03).
        layout: body keypoint layout (``mmext.pose.hand_box.BODY_LAYOUTS``); default: by count.
        flip_left: mirror left-hand crops (OpenPose); default: ``hand_model.test_cfg``'s
            ``mirror_left`` (False if unset).
        crop_padding: the hand model pipeline's ``GetBBoxCenterScale`` padding; default: read
            from ``hand_model.cfg`` (so the crop is the hand box itself).
        hand_scale_number, hand_scale_range: OpenPose's multi-scale test (default 1: off).
    """

    def __init__(self, hand_model, body_model: Optional[Union[Callable, object]] = None,
                 rule: str = 'openpose', score_thr: float = OPENPOSE_SCORE_THR,
                 layout: Optional[str] = None, flip_left: Optional[bool] = None,
                 crop_padding: Optional[float] = None, hand_scale_number: int = 1,
                 hand_scale_range: float = 0.4) -> None:
        self.hand_model, self.body_model = hand_model, body_model
        self.rule, self.score_thr, self.layout = rule, score_thr, layout
        if flip_left is None:
            flip_left = bool((getattr(hand_model, 'test_cfg', None) or {}).get('mirror_left',
                                                                                 False))
        self.flip_left = flip_left
        self.crop_padding = pipeline_bbox_padding(hand_model) if crop_padding is None \
            else float(crop_padding)
        self.scales = openpose_scales(hand_scale_number, hand_scale_range)
        hand_instances(np.zeros((1, 17, 2)), rule=rule)  # validates the rule early

    def _body(self, img: np.ndarray, person_bboxes: Optional[np.ndarray]):
        if self.body_model is None:
            raise ValueError('HandsFromBody: no body_model, so body_keypoints must be given')
        if callable(self.body_model) and not hasattr(self.body_model, 'cfg'):
            return self.body_model(img)
        from mmpose.apis import inference_topdown
        samples = inference_topdown(self.body_model, img, person_bboxes, bbox_format='xyxy')
        kpts = np.concatenate([s.pred_instances.keypoints for s in samples])
        scores = np.concatenate([s.pred_instances.keypoint_scores for s in samples])
        return kpts, scores

    def _topdown(self, img: np.ndarray, boxes: np.ndarray):
        """inference_topdown on boxes (M, 4) -> keypoints (M, 21, 2), scores (M, 21)."""
        from mmpose.apis import inference_topdown
        if len(boxes) == 0:
            return np.zeros((0, NUM_HAND_KEYPOINTS, 2)), np.zeros((0, NUM_HAND_KEYPOINTS))
        samples = inference_topdown(self.hand_model, img, boxes.astype(np.float32),
                                    bbox_format='xyxy')
        kpts = np.concatenate([s.pred_instances.keypoints for s in samples])
        scores = np.concatenate([s.pred_instances.keypoint_scores for s in samples])
        return kpts, scores

    def _hands(self, img: np.ndarray, boxes: np.ndarray, mirror: bool):
        """Keypoints of the hands in ``boxes`` (crops already divided by the padding)."""
        w = img.shape[1]
        if mirror:
            # mirror the image and the boxes, predict, mirror the keypoints back
            img = img[:, ::-1].copy()
            boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        best_k = best_s = None
        for i, s in enumerate(self.scales):
            if len(self.scales) == 1:
                b = boxes
            else:  # OpenPose recentres the hand box to round(side * s) // 2 * 2 pixels
                full = (boxes[:, 2] - boxes[:, 0]) * self.crop_padding
                factor = np.round(full * s) // 2 * 2 / np.maximum(full, 1e-12)
                b = scale_boxes(boxes, factor[:, None])
            k, sc = self._topdown(img, b)
            if i == 0:
                best_k, best_s = k, sc
            else:  # keep the scale with the higher mean keypoint score (strictly)
                better = sc.mean(-1) > best_s.mean(-1)
                best_k[better], best_s[better] = k[better], sc[better]
        if mirror:
            best_k = np.stack([w - best_k[..., 0], best_k[..., 1]], axis=-1)
        return best_k, best_s

    def __call__(self, img: Union[str, np.ndarray], body_keypoints: Optional[np.ndarray] = None,
                 body_scores: Optional[np.ndarray] = None,
                 person_bboxes: Optional[np.ndarray] = None) -> dict:
        """Run on one image.

        Args:
            img: image path or BGR array.
            body_keypoints: ``(N, K, 2|3)`` body keypoints (skips the body model).
            body_scores: ``(N, K)`` their scores.
            person_bboxes: ``(N, 4)`` xyxy person boxes for an MMPose body model (default: the
                whole image as one person).

        Returns:
            dict with ``body_keypoints`` ``(N, K, 2)``, ``body_scores``, ``hand_boxes``
            ``(N, 2, 4)`` (0 left, 1 right; NaN where no box), ``hand_valid`` ``(N, 2)``,
            ``hand_keypoints`` ``(N, 2, 21, 2)`` and ``hand_scores`` ``(N, 2, 21)`` (NaN where no
            box).
        """
        image = _load_image(img)
        h, w = image.shape[:2]
        if body_keypoints is None:
            if person_bboxes is None:
                person_bboxes = np.array([[0, 0, w, h]], np.float32)
            body_keypoints, body_scores = self._body(image, person_bboxes)
        kpts = np.asarray(body_keypoints, np.float64)
        if kpts.ndim == 2:
            kpts = kpts[None]
        inst = hand_instances(kpts, body_scores, self.rule, self.score_thr, self.layout,
                              self.crop_padding)
        n = len(kpts)
        boxes = np.full((n, 2, 4), np.nan)
        valid = np.zeros((n, 2), bool)
        boxes[inst['person'], inst['side']] = inst['hand_boxes']
        valid[inst['person'], inst['side']] = True
        hand_kpts = np.full((n, 2, NUM_HAND_KEYPOINTS, 2), np.nan)
        hand_scores = np.full((n, 2, NUM_HAND_KEYPOINTS), np.nan)
        for side in (0, 1):
            sel = inst['side'] == side
            k, s = self._hands(image, inst['bboxes'][sel], self.flip_left and side == 0)
            hand_kpts[inst['person'][sel], side] = k
            hand_scores[inst['person'][sel], side] = s
        return dict(body_keypoints=kpts[..., :2], body_scores=body_scores, hand_boxes=boxes,
                    hand_valid=valid, hand_keypoints=hand_kpts, hand_scores=hand_scores)


def draw_hands(img: np.ndarray, result: dict, radius: int = 2) -> np.ndarray:
    """Draw the hand boxes (green left, blue right) and keypoints on a copy of ``img``."""
    import cv2
    out = img.copy()
    for p in range(len(result['hand_boxes'])):
        for side, color in ((0, (0, 200, 0)), (1, (255, 80, 0))):
            if not result['hand_valid'][p, side]:
                continue
            x1, y1, x2, y2 = result['hand_boxes'][p, side].round().astype(int)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, 1)
            for (x, y), s in zip(result['hand_keypoints'][p, side], result['hand_scores'][p, side]):
                if np.isfinite(x) and s > 0.2:
                    cv2.circle(out, (int(round(x)), int(round(y))), radius, (0, 0, 255), -1)
    return out
