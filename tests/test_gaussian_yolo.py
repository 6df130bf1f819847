"""Gaussian YOLOv3 (Choi et al., ICCV 2019, arXiv:1904.04620) vs mmdet's YOLOv3 head."""
import math
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmdet.models.dense_heads import YOLOV3Head
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData

import mmext  # noqa: F401
from mmext.analysis import model_complexity
from mmext.datasets.box_jitter import JitterBoxes
from mmext.models.dense_heads import GaussianYOLOV3Head
from mmext.models.losses import GaussianNLLLoss

from conftest import ROOT, run_tool

CFG_DIR = osp.join(ROOT, 'configs', 'gaussian_yolov3')
MMDET_CFG = osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'configs', 'yolo')
TRAIN_CFG = ConfigDict(assigner=dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                     min_pos_iou=0))
TEST_CFG = ConfigDict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, conf_thr=0.005,
                      nms=dict(type='nms', iou_threshold=0.45), max_per_img=100)
SUM = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0, reduction='sum')
NUM_CLASSES = 3
ATTRIB = 9 + NUM_CLASSES


def _one_level_head(**kw):
    """One 32x32 anchor at stride 32: a 64x64 input has a 2x2 grid, one anchor per cell."""
    return GaussianYOLOV3Head(
        NUM_CLASSES, [4], out_channels=[4], featmap_strides=[32],
        anchor_generator=dict(type='YOLOAnchorGenerator', base_sizes=[[(32, 32)]],
                              strides=[32]),
        loss_cls=SUM, loss_conf=SUM, train_cfg=TRAIN_CFG, test_cfg=TEST_CFG, **kw)


META64 = [dict(batch_input_shape=(64, 64), img_shape=(64, 64), scale_factor=(1.0, 1.0))]


def _nll(t, mu, sigma, offset=0.3):
    """eq. 5 for one coordinate, written out."""
    density = math.exp(-(t - mu)**2 / (2 * sigma**2)) / (math.sqrt(2 * math.pi) *
                                                          (sigma + offset))
    return -math.log(density + 1e-9)


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


# GT box centred at (20, 16), 32 x 16 px, in cell (0, 0) whose anchor is [0, 0, 32, 32]:
# YOLOBBoxCoder targets tx = 4/32 + 0.5, ty = 0.5, tw = log(32/32), th = log(16/32)
GT = InstanceData(bboxes=torch.tensor([[4., 8., 36., 24.]]), labels=torch.tensor([1]))
TARGET = (0.625, 0.5, 0.0, math.log(0.5))
MU_RAW = (0.3, -0.2, 0.1, -0.5)  # mu_x, mu_y before their sigmoid; mu_w, mu_h raw
SIGMA_RAW = (-1.0, 0.5, -2.0, 1.5)


def _hand_built_pred():
    pred = torch.randn(1, ATTRIB, 2, 2, generator=torch.Generator().manual_seed(0))
    pred[0, :4, 0, 0] = torch.tensor(MU_RAW)
    pred[0, 4:8, 0, 0] = torch.tensor(SIGMA_RAW)
    return pred


def _hand_nll(offset=0.3):
    mu = (_sigmoid(MU_RAW[0]), _sigmoid(MU_RAW[1]), MU_RAW[2], MU_RAW[3])
    return sum(_nll(t, m, _sigmoid(s), offset) for t, m, s in zip(TARGET, mu, SIGMA_RAW))


# gamma = (2 - w*h) / 2 with w, h relative to the 64x64 input: (2 - 0.5 * 0.25) / 2
GAMMA = (2 - (32 / 64) * (16 / 64)) / 2


@pytest.mark.parametrize('offset', [0.3, 0.0])
def test_box_loss_equals_hand_computed_gamma_weighted_nll(offset):
    head = _one_level_head(loss_bbox=dict(type='GaussianNLLLoss', sigma_offset=offset))
    losses = head.loss_by_feat([_hand_built_pred()], [GT], META64)
    assert GAMMA == 0.9375
    expected = GAMMA * _hand_nll(offset)
    assert losses['loss_bbox'][0].item() == pytest.approx(expected, rel=1e-5)
    assert sorted(losses) == ['loss_bbox', 'loss_cls', 'loss_conf']


def test_paper_gamma_is_loss_weight_two():
    """The paper's omega_scale = 2 - w*h is twice the head's (2 - w*h) / 2."""
    head = _one_level_head(loss_bbox=dict(type='GaussianNLLLoss', loss_weight=2.0))
    losses = head.loss_by_feat([_hand_built_pred()], [GT], META64)
    assert losses['loss_bbox'][0].item() == pytest.approx(2 * GAMMA * _hand_nll(), rel=1e-5)


def test_only_the_responsible_anchor_has_box_loss():
    head = _one_level_head()
    pred = _hand_built_pred()
    base = head.loss_by_feat([pred], [GT], META64)['loss_bbox'][0]
    pred[0, :8, 1, 1] += 5  # another cell's box prediction changes nothing
    assert torch.equal(head.loss_by_feat([pred], [GT], META64)['loss_bbox'][0], base)


def test_nll_floor_is_minus_log_eps_far_from_the_gaussian():
    loss = GaussianNLLLoss(sigma_offset=0.3)
    value = loss(torch.zeros(1), torch.full((1, ), 0.01), torch.full((1, ), 5.0))
    assert value.item() == pytest.approx(-math.log(1e-9), rel=1e-6)


@pytest.mark.parametrize('offset', [0.3, 0.0])
@pytest.mark.parametrize('sigma_logit', [-40.0, -20.0, -8.0, 8.0, 20.0, 40.0])
@pytest.mark.parametrize('error', [0.0, 1e-4, 0.5, 10.0])
def test_gradients_finite_for_sigma_near_0_and_1(offset, sigma_logit, error):
    head = _one_level_head(loss_bbox=dict(type='GaussianNLLLoss', sigma_offset=offset))
    pred = torch.zeros(1, ATTRIB, 2, 2)
    pred[0, 4:8, 0, 0] = sigma_logit
    # mu_x = sigmoid(0) = 0.5 and mu_w = 0: set the targets' distance through the raw mu's
    pred[0, 2, 0, 0] = TARGET[2] + error
    pred[0, 3, 0, 0] = TARGET[3] - error
    pred.requires_grad_(True)
    losses = head.loss_by_feat([pred], [GT], META64)
    total = sum(sum(v) for v in losses.values())
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(pred.grad).all()


def test_nll_is_computed_in_float32_for_half_inputs():
    mu = torch.zeros(4, dtype=torch.half)
    sigma = torch.tensor([1e-7, 1e-3, 0.5, 1.0]).half()
    value = GaussianNLLLoss(reduction='none')(mu, sigma, torch.full((4, ), 0.25).half())
    assert value.dtype == torch.float32 and torch.isfinite(value).all()


def test_nll_pulls_mu_to_target_and_sigma_to_the_error():
    """A gradient step on the NLL moves mu towards the target; sigma grows for a big error."""
    mu = torch.zeros(1, requires_grad=True)
    sigma = torch.full((1, ), 0.2, requires_grad=True)
    GaussianNLLLoss()(mu, sigma, torch.full((1, ), 0.5)).backward()
    assert mu.grad.item() < 0 and sigma.grad.item() < 0


def _pred_maps(head, x):
    return head(x)[0]


def test_prediction_score_and_uncertainty():
    torch.manual_seed(0)
    head = GaussianYOLOV3Head(NUM_CLASSES, [8, 8, 8], out_channels=[8, 8, 8],
                              test_cfg=TEST_CFG).eval()
    maps = [torch.randn(2, 3 * ATTRIB, s, s) for s in (2, 4, 8)]
    meta = [dict(batch_input_shape=(64, 64), img_shape=(64, 64), scale_factor=(1.0, 1.0))] * 2
    for res in head.predict_by_feat(maps, meta, with_nms=False):
        assert len(res) > 0
        assert res.bbox_uncertainty.shape == (len(res), 4)
        assert (res.bbox_uncertainty > 0).all() and (res.bbox_uncertainty < 1).all()
    res = head.predict_by_feat(maps, meta)[0]  # NMS keeps each box's own sigmas
    assert res.bbox_uncertainty.shape == (len(res), 4) and len(res) > 0

    # the same maps without the sigma channels are a YOLOv3 prediction: same boxes, and
    # scores scaled by exactly (1 - mean sigma)
    ref = YOLOV3Head(NUM_CLASSES, [8, 8, 8], out_channels=[8, 8, 8], test_cfg=TEST_CFG)
    keep = [c for a in range(3) for c in
            list(range(a * ATTRIB, a * ATTRIB + 4)) + list(range(a * ATTRIB + 8, (a + 1) * ATTRIB))]
    ref_maps = [m[:, keep] for m in maps]
    ours = head.predict_by_feat(maps, meta, with_nms=False)[0]
    theirs = ref.predict_by_feat(ref_maps, meta, with_nms=False)[0]
    torch.testing.assert_close(ours.bboxes, theirs.bboxes)
    torch.testing.assert_close(ours.scores,
                               theirs.scores * (1 - ours.bbox_uncertainty.mean(-1)))
    head.uncertainty_score = False
    plain = head.predict_by_feat(maps, meta, with_nms=False)[0]
    torch.testing.assert_close(plain.scores, theirs.scores)


def test_init_puts_yolov3_priors_on_objectness_and_classes_and_sigma_half():
    head = GaussianYOLOV3Head(NUM_CLASSES, [8, 8, 8], out_channels=[8, 8, 8])
    ref = YOLOV3Head(NUM_CLASSES, [8, 8, 8], out_channels=[8, 8, 8])
    head.init_weights()
    ref.init_weights()
    for ours, theirs in zip(head.convs_pred, ref.convs_pred):
        b, r = ours.bias.view(3, -1), theirs.bias.view(3, -1)
        assert torch.equal(b[:, 4:8], torch.zeros(3, 4))  # sigma = 0.5
        assert torch.equal(b[:, 8:], r[:, 4:])


def _darknet_cfg(path):
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    return cfg


def test_flops_overhead_below_0_1_percent_at_512():
    """Paper: 99 -> 99.04 B (2 per multiply-add); the extra cost is 12 channels of 3 1x1 convs."""
    ours = model_complexity(
        _darknet_cfg(osp.join(CFG_DIR, 'gaussian-yolov3_d53_8xb8-ms-512-273e_coco.py')),
        (512, 512))
    ref = model_complexity(_darknet_cfg(osp.join(MMDET_CFG, 'yolov3_d53_8xb8-ms-608-273e_coco.py')),
                           (512, 512))
    assert ref['flops'] == pytest.approx(50.0e9, rel=1e-3)
    assert 0 < ours['flops'] - ref['flops'] < 1e-3 * ref['flops']
    # 4 sigmas x 3 anchors more outputs on 1x1 convs of 1024, 512, 256 inputs (+ biases)
    assert ours['params'] - ref['params'] == 12 * (1024 + 512 + 256) + 3 * 12
    # multiply-adds of those channels on the 16, 32 and 64 px grids
    assert ours['flops'] - ref['flops'] == pytest.approx(
        12 * (1024 * 16**2 + 512 * 32**2 + 256 * 64**2), rel=1e-3)


@pytest.mark.parametrize('name', [
    'gaussian-yolov3_d53_8xb8-ms-416-273e_coco.py',
    'gaussian-yolov3_d53_8xb8-ms-512-273e_coco.py',
    'gaussian-yolov3_d53_8xb8-ms-608-273e_coco.py',
    'gaussian-yolov3_d53_8xb8-ms-512-273e_kitti-3class.py',
    'gaussian-yolov3_mobilenetv2_synthetic.py',
    'gaussian-yolov3_mobilenetv2_synthetic-jitter.py',
])
def test_configs_build_the_gaussian_head(name):
    cfg = Config.fromfile(osp.join(CFG_DIR, name))
    head = cfg.model.bbox_head
    assert head.type == 'GaussianYOLOV3Head'
    assert head.loss_xy is None and head.loss_wh is None
    assert head.num_classes == (80 if 'coco' in name else 3)
    size = re.search(r'-(\d{3})-', name)
    if size:  # the test input is the size in the name
        resize = [t for t in cfg.test_pipeline if t['type'] == 'Resize'][0]
        assert resize['scale'] == (int(size.group(1)), ) * 2
    if 'synthetic' in name:  # small enough to build here
        from mmext.analysis import build_model
        model = build_model(cfg)
        assert isinstance(model.bbox_head, GaussianYOLOV3Head)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match='loss_xy=.*set loss_xy=None'):
        GaussianYOLOV3Head(3, [8, 8, 8], loss_xy=dict(type='CrossEntropyLoss'))
    with pytest.raises(ValueError, match='loss_wh=.*set loss_wh=None'):
        GaussianYOLOV3Head(3, [8, 8, 8], loss_wh=dict(type='MSELoss'))
    with pytest.raises(ValueError, match='num_classes=0'):
        GaussianYOLOV3Head(0, [8, 8, 8])
    with pytest.raises(ValueError, match="uncertainty_score='yes'"):
        GaussianYOLOV3Head(3, [8, 8, 8], uncertainty_score='yes')
    with pytest.raises(ValueError, match=r'in_channels=\[8, 8\].*one entry per scale'):
        GaussianYOLOV3Head(3, [8, 8])
    with pytest.raises(ValueError, match='sigma_offset=-0.1'):
        GaussianYOLOV3Head(3, [8, 8, 8], loss_bbox=dict(type='GaussianNLLLoss',
                                                        sigma_offset=-0.1))
    with pytest.raises(ValueError, match="reduction='max'"):
        GaussianNLLLoss(reduction='max')
    with pytest.raises(ValueError, match='ratio=-1'):
        JitterBoxes(ratio=-1)


def test_jitter_is_fixed_per_annotation_and_stays_in_the_image():
    boxes = np.array([[10., 10., 50., 40.], [0., 0., 5., 5.]], dtype=np.float32)
    results = lambda: dict(gt_bboxes=boxes.copy(), img_shape=(60, 80), img_path='a.png')  # noqa
    jitter = JitterBoxes(ratio=0.2)
    a, b = jitter(results())['gt_bboxes'], jitter(results())['gt_bboxes']
    np.testing.assert_array_equal(a, b)  # label noise, not augmentation
    assert not np.allclose(a, boxes)
    assert (a[:, 2] > a[:, 0]).all() and (a[:, 3] > a[:, 1]).all()
    assert a[:, 0::2].min() >= 0 and a[:, 0::2].max() <= 80 + 1
    other = jitter(dict(results(), img_path='b.png'))['gt_bboxes']
    assert not np.allclose(a, other)
    fresh = JitterBoxes(ratio=0.2, fixed=False)
    assert not np.allclose(fresh(results())['gt_bboxes'], fresh(results())['gt_bboxes'])


@pytest.mark.slow
def test_synthetic_jitter_config_trains_and_evaluates(tmp_path, python, synthetic_root):
    cfg = osp.join('configs', 'gaussian_yolov3', 'gaussian-yolov3_mobilenetv2_synthetic-jitter.py')
    res = run_tool([python, 'tools/train.py', cfg, '--work-dir', str(tmp_path), '--cfg-options',
                    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                    'train_dataloader.dataset.indices=16', 'val_dataloader.dataset.indices=8',
                    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
                    'train_dataloader.persistent_workers=False',
                    'val_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1'])
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]
    losses = [float(v) for v in re.findall(r'loss_bbox: ([\d.]+)', out)]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert osp.exists(osp.join(tmp_path, 'epoch_1.pth'))
