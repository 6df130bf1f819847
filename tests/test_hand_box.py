"""Hand boxes from body keypoints (Simon et al., CVPR 2017, arXiv:1704.07809; OpenPose rule)."""
import numpy as np
import pytest

import mmext  # noqa: F401
from mmext.pose.hand_box import HandBoxFromBody, hand_boxes_from_body
from mmpose.registry import TRANSFORMS

REGISTRY_SCOPE = 'mmpose'  # see conftest._default_registry_scope


def _body(left=None, right=None, n=17):
    """COCO-17 body with the given (shoulder, elbow, wrist) per side, everything else far away."""
    k = np.zeros((n, 3))
    k[:, 2] = 1.0
    for (s, e, w), pts in (((5, 7, 9), left), ((6, 8, 10), right)):
        if pts is not None:
            k[[s, e, w], :2] = pts
    return k


ARM_STRAIGHT = [(0, 0), (0, 10), (0, 20)]        # forearm 10, upper arm 10
ARM_LONG_UPPER = [(0, 0), (0, 20), (6, 28)]      # forearm 10 (6, 8), upper arm 20


def test_openpose_rule_matches_hand_computed_boxes():
    boxes, valid = hand_boxes_from_body(_body(ARM_STRAIGHT, ARM_LONG_UPPER))
    assert valid.tolist() == [[True, True]]
    # left: centre (0, 20 + 0.33*10), side 1.5*max(10, 0.9*10) = 15
    np.testing.assert_allclose(boxes[0, 0], [-7.5, 23.3 - 7.5, 7.5, 23.3 + 7.5], atol=1e-9)
    # right: centre (6 + 0.33*6, 28 + 0.33*8), side 1.5*max(10, 0.9*20) = 27
    cx, cy = 6 + 0.33 * 6, 28 + 0.33 * 8
    np.testing.assert_allclose(boxes[0, 1], [cx - 13.5, cy - 13.5, cx + 13.5, cy + 13.5], atol=1e-9)


def test_paper_rule_matches_hand_computed_boxes():
    boxes, valid = hand_boxes_from_body(_body(ARM_STRAIGHT, ARM_LONG_UPPER), rule='paper')
    assert valid.all()
    # centre 0.15 of elbow->wrist beyond the wrist, side 2.2 * forearm (upper arm ignored)
    np.testing.assert_allclose(boxes[0, 0], [-11, 21.5 - 11, 11, 21.5 + 11], atol=1e-9)
    cx, cy = 6 + 0.15 * 6, 28 + 0.15 * 8
    np.testing.assert_allclose(boxes[0, 1], [cx - 11, cy - 11, cx + 11, cy + 11], atol=1e-9)


def test_missing_or_low_confidence_joints_give_no_box_not_an_error():
    k = np.stack([_body(ARM_STRAIGHT, ARM_STRAIGHT)] * 3)
    k[0, 9, 2] = 0.01            # person 0: left wrist under OpenPose's 0.03
    k[1, 8, :2] = np.nan         # person 1: right elbow missing (NaN)
    k[2, 6, 2] = np.nan          # person 2: right shoulder score NaN
    boxes, valid = hand_boxes_from_body(k)
    assert valid.tolist() == [[False, True], [True, False], [True, False]]
    assert np.isnan(boxes[~valid]).all() and np.isfinite(boxes[valid]).all()
    # the paper rule does not use the shoulder, so person 2 keeps its right hand
    assert hand_boxes_from_body(k, rule='paper')[1][2].tolist() == [True, True]
    # wrist on the elbow: no direction, no box
    k2 = _body([(0, 0), (5, 5), (5, 5)])
    assert not hand_boxes_from_body(k2, rule='paper')[1][0, 0]


def test_vectorised_over_people_and_separate_scores():
    rng = np.random.default_rng(0)
    k = rng.uniform(0, 100, size=(5, 17, 2))
    boxes, valid = hand_boxes_from_body(k, scores=np.ones((5, 17)))
    for i in range(5):
        b1, _ = hand_boxes_from_body(k[i])
        np.testing.assert_allclose(boxes[i], b1[0])
    side = boxes[..., 2] - boxes[..., 0]
    np.testing.assert_allclose(side, boxes[..., 3] - boxes[..., 1])  # square


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match='rule'):
        hand_boxes_from_body(_body(ARM_STRAIGHT), rule='mediapipe')
    with pytest.raises(ValueError, match='shape'):
        hand_boxes_from_body(np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match='scores'):
        hand_boxes_from_body(np.zeros((2, 17, 2)), scores=np.ones((2, 16)))
    with pytest.raises(ValueError, match='rule'):
        HandBoxFromBody(rule='x')


def test_transform_in_an_mmpose_pipeline_crops_the_hands():
    t = TRANSFORMS.build(dict(type='HandBoxFromBody', as_bbox=True))
    body = _body(ARM_STRAIGHT, ARM_LONG_UPPER)
    body[9, 2] = 0.0  # no left hand
    results = dict(keypoints=body[None, :, :2], keypoint_scores=body[None, :, 2])
    results = t(results)
    assert results['hand_bbox_valid'].tolist() == [[False, True]]
    assert results['bbox'].shape == (1, 4) and results['hand_side'].tolist() == [1]
    # the next mmpose steps accept the boxes
    results['img'] = np.zeros((64, 64, 3), np.uint8)
    results['img_shape'] = (64, 64)
    results = TRANSFORMS.build(dict(type='GetBBoxCenterScale', padding=1.0))(results)
    np.testing.assert_allclose(results['bbox_scale'][0], [27, 27], rtol=1e-5)
