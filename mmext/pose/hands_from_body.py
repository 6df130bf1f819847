"""Body -> hands inference (Simon et al., CVPR 2017, arXiv:1704.07809, as run by OpenPose):
body keypoints (from an MMPose body model, any callable, or annotations) -> left/right hand boxes
(:func:`mmext.pose.hand_box.hand_boxes_from_body`) -> hand keypoints from a top-down MMPose hand
model (e.g. the hand CPM of ``configs/hand/``).

OpenPose runs its hand network on right hands and mirrors left-hand crops; ``flip_left=True``
does the same (for models trained on right hands only, like the synthetic one). Models trained on
both hands (OneHand10K, COCO-WholeBody-Hand) take the crops as they are (default).
"""
from typing import Callable, Optional, Union

import numpy as np

from .hand_box import OPENPOSE_SCORE_THR, hand_boxes_from_body

NUM_HAND_KEYPOINTS = 21


def _load_image(img: Union[str, np.ndarray]) -> np.ndarray:
    if isinstance(img, str):
        import mmcv
        return mmcv.imread(img)
    if not isinstance(img, np.ndarray) or img.ndim != 3:
        raise TypeError(f'img must be a path or an (H, W, 3) array, got {type(img).__name__}')
    return img


class HandsFromBody:
    """Hand keypoints of every person in an image, found from their body keypoints.

    Args:
        hand_model: an MMPose top-down hand model (``mmpose.apis.init_model``).
        body_model: an MMPose top-down body model (COCO-17 keypoints), or a callable
            ``body(img) -> (keypoints (N, 17, 2), scores (N, 17))``; None if body keypoints are
            always given to :meth:`__call__`.
        rule: hand-box rule, ``'openpose'`` (default) or ``'paper'``.
        score_thr: body joints scoring at or below it are missing (OpenPose: 0.03).
        flip_left: mirror left-hand crops for models trained on right hands only.
    """

    def __init__(self, hand_model, body_model: Optional[Union[Callable, object]] = None,
                 rule: str = 'openpose', score_thr: float = OPENPOSE_SCORE_THR,
                 flip_left: bool = False) -> None:
        self.hand_model, self.body_model = hand_model, body_model
        self.rule, self.score_thr, self.flip_left = rule, score_thr, flip_left
        hand_boxes_from_body(np.zeros((1, 17, 2)), rule=rule)  # validates the rule early

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

    def _hands(self, img: np.ndarray, boxes: np.ndarray):
        from mmpose.apis import inference_topdown
        if len(boxes) == 0:
            return np.zeros((0, NUM_HAND_KEYPOINTS, 2)), np.zeros((0, NUM_HAND_KEYPOINTS))
        samples = inference_topdown(self.hand_model, img, boxes.astype(np.float32),
                                    bbox_format='xyxy')
        kpts = np.concatenate([s.pred_instances.keypoints for s in samples])
        scores = np.concatenate([s.pred_instances.keypoint_scores for s in samples])
        return kpts, scores

    def __call__(self, img: Union[str, np.ndarray], body_keypoints: Optional[np.ndarray] = None,
                 body_scores: Optional[np.ndarray] = None,
                 person_bboxes: Optional[np.ndarray] = None) -> dict:
        """Run on one image.

        Args:
            img: image path or BGR array.
            body_keypoints: ``(N, 17, 2|3)`` COCO-17 keypoints (skips the body model).
            body_scores: ``(N, 17)`` their scores.
            person_bboxes: ``(N, 4)`` xyxy person boxes for an MMPose body model (default: the
                whole image as one person).

        Returns:
            dict with ``body_keypoints`` ``(N, 17, 2)``, ``body_scores``, ``hand_boxes``
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
        boxes, valid = hand_boxes_from_body(kpts, body_scores, self.rule, self.score_thr)
        n = len(boxes)
        hand_kpts = np.full((n, 2, NUM_HAND_KEYPOINTS, 2), np.nan)
        hand_scores = np.full((n, 2, NUM_HAND_KEYPOINTS), np.nan)
        for side in (0, 1):
            idx = np.nonzero(valid[:, side])[0]
            b = boxes[idx, side]
            if self.flip_left and side == 0 and len(idx):
                # mirror the image and the boxes, predict, mirror the keypoints back
                fb = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], axis=1)
                k, s = self._hands(image[:, ::-1].copy(), fb)
                k = np.stack([w - k[..., 0], k[..., 1]], axis=-1)
            else:
                k, s = self._hands(image, b)
            hand_kpts[idx, side], hand_scores[idx, side] = k, s
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
