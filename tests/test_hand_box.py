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
    with pytest.raises(ValueError, match='5 body keypoints match no known layout'):
        hand_boxes_from_body(np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match='shape'):
        hand_boxes_from_body(np.zeros((2, 17, 4)))
    with pytest.raises(ValueError, match='scores'):
        hand_boxes_from_body(np.zeros((2, 17, 2)), scores=np.ones((2, 16)))
    with pytest.raises(ValueError, match='rule'):
        HandBoxFromBody(rule='x')


def _person(left, right, offset=(0, 0)):
    """COCO-17 body (x, y, score) with the given arms, moved by offset."""
    k = _body(left, right)
    k[:, :2] += offset
    return k


def _to_layout(coco17, layout):
    """The COCO-17 arms placed at their joint names' indices of another layout."""
    from mmext.pose.hand_box import LAYOUT_NUM_KEYPOINTS, layout_joint_names
    names = layout_joint_names(layout)
    assert len(names) == LAYOUT_NUM_KEYPOINTS[layout]
    coco = layout_joint_names('coco')
    out = np.zeros((len(names), 3))
    out[:, 2] = 1.0
    for i, n in enumerate(coco):
        if n in names:
            out[names.index(n)] = coco17[i]
    return out


@pytest.mark.parametrize('layout', ['coco', 'coco_wholebody', 'halpe', 'halpe26', 'body_25'])
def test_body_layouts_are_read_by_joint_names(layout):
    body = _body(ARM_STRAIGHT, ARM_LONG_UPPER)
    expected, _ = hand_boxes_from_body(body, layout='coco')
    other = _to_layout(body, layout)
    for name in (layout, None):  # named, or known by its keypoint count
        boxes, valid = hand_boxes_from_body(other, layout=name)
        assert valid.all()
        np.testing.assert_allclose(boxes, expected)


def test_body_25_is_not_read_as_coco():
    # BODY_25: 2/3/4 right shoulder/elbow/wrist, 5/6/7 left; COCO-17's 5..10 there are others
    from mmext.pose.hand_box import arm_indices
    assert arm_indices('body_25') == {'left': (5, 6, 7), 'right': (2, 3, 4)}
    assert arm_indices('coco') == {'left': (5, 7, 9), 'right': (6, 8, 10)}
    assert arm_indices('coco_wholebody') == arm_indices('halpe') == arm_indices('coco')


def test_unknown_layout_or_wrong_keypoint_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown body layout 'mpii'.*body_25"):
        hand_boxes_from_body(np.zeros((1, 16, 3)), layout='mpii')
    with pytest.raises(ValueError, match="layout 'coco' has 17 keypoints, got 25"):
        hand_boxes_from_body(np.zeros((1, 25, 3)), layout='coco')
    with pytest.raises(ValueError, match='20 body keypoints match no known layout'):
        hand_boxes_from_body(np.zeros((1, 20, 3)))
    with pytest.raises(ValueError, match='unknown body layout'):
        HandBoxFromBody(layout='mpii')


@pytest.mark.parametrize('padding', [1.25, 1.0, 1.5])
def test_pipeline_crop_is_openposes_box_after_get_bbox_center_scale(padding):
    """HandBoxFromBody(as_bbox, side) + MMPose's GetBBoxCenterScale(padding) + TopdownAffine:
    the crop is OpenPose's square, side 1.5 max(|wrist-elbow|, 0.9 |elbow-shoulder|)."""
    body = _person(ARM_STRAIGHT, ARM_LONG_UPPER, offset=(40, 20))
    sides = {'left': 1.5 * 10, 'right': 1.5 * max(10, 0.9 * 20)}
    for side, openpose_side in sides.items():
        steps = [dict(type='HandBoxFromBody', as_bbox=True, side=side, crop_padding=padding),
                 dict(type='GetBBoxCenterScale', padding=padding),
                 dict(type='TopdownAffine', input_size=(32, 32))]
        results = dict(keypoints=body[None, :, :2], keypoint_scores=body[None, :, 2],
                       img=np.zeros((96, 96, 3), np.uint8), img_shape=(96, 96))
        for step in steps:
            results = TRANSFORMS.build(step)(results)
        assert results['img'].shape == (32, 32, 3)
        np.testing.assert_allclose(results['bbox_scale'], [[openpose_side] * 2], rtol=1e-6)
        box = results['hand_bboxes'][0, 0 if side == 'left' else 1]
        np.testing.assert_allclose(results['bbox_center'][0], (box[:2] + box[2:]) / 2, rtol=1e-6)
        assert results['hand_side'].tolist() == [0 if side == 'left' else 1]


def test_transform_with_a_missing_hand_and_bad_settings():
    t = TRANSFORMS.build(dict(type='HandBoxFromBody', as_bbox=True, side='left'))
    body = _body(ARM_STRAIGHT, ARM_LONG_UPPER)
    body[9, 2] = 0.0  # no left hand
    results = t(dict(keypoints=body[None, :, :2], keypoint_scores=body[None, :, 2]))
    assert results['hand_bbox_valid'].tolist() == [[False, True]]
    assert results['bbox'].shape == (0, 4)
    with pytest.raises(ValueError, match="side='left' or 'right'"):
        HandBoxFromBody(as_bbox=True)
    with pytest.raises(ValueError, match='crop_padding'):
        HandBoxFromBody(crop_padding=0)


def test_inference_topdown_runs_both_hands_of_every_person(tmp_path):
    """hand_instances -> mmpose.apis.inference_topdown: one result per hand; the crop each
    one saw (``input_scale``) is OpenPose's box, through the model's own pipeline."""
    import os.path as osp
    import torch
    from mmpose.apis import inference_topdown, init_model
    from mmext.pose.hand_box import hand_instances
    from conftest import ROOT
    torch.manual_seed(0)
    model = init_model(osp.join(ROOT, 'configs/hand/cpm_hand_synthetic-96x96.py'), None,
                       device='cpu')
    people = np.stack([_person(ARM_STRAIGHT, ARM_LONG_UPPER, (30, 10)),
                       _person(ARM_LONG_UPPER, ARM_STRAIGHT, (80, 40))])
    inst = hand_instances(people[..., :2], people[..., 2])  # crop_padding: MMPose's 1.25
    assert inst['person'].tolist() == [0, 0, 1, 1] and inst['side'].tolist() == [0, 1, 0, 1]
    img = np.random.default_rng(0).integers(0, 255, (128, 160, 3), dtype=np.uint8)
    samples = inference_topdown(model, img, inst['bboxes'], bbox_format='xyxy')
    assert len(samples) == 4
    sides = [15, 27, 27, 15]  # 1.5 * max(forearm, 0.9 * upper arm)
    for s, box, side in zip(samples, inst['hand_boxes'], sides):
        assert s.pred_instances.keypoints.shape == (1, 21, 2)
        np.testing.assert_allclose(s.metainfo['input_scale'], [side, side], rtol=1e-5)
        np.testing.assert_allclose(s.metainfo['input_center'], (box[:2] + box[2:]) / 2,
                                   rtol=1e-5)
