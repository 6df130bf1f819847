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
    # darknet recipes train with the official code's gradient; the synthetic benchmark pair
    # keeps the autograd one its README figures were measured with
    assert head.box_gradient == ('autograd' if 'synthetic' in name else 'darknet')
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


# ------------------------------------------------------------------ the official gradient
def _darknet_delta(truth, x, anchor, cell, grid, net, scale):
    """``delta_gaussian_yolo_box`` (jwchoi384/Gaussian_YOLOv3, src/gaussian_yolo_layer.c) for
    one anchor, re-derived here in Python from that function.

    truth: (x, y, w, h) of the box relative to the network input; x: the layer's output at
    the anchor in darknet's order (mu_x, sigma_x, mu_y, sigma_y, mu_w, sigma_w, mu_h, sigma_h),
    logistic applied to all but mu_w, mu_h; anchor: its (w, h) in pixels; cell: (i, j);
    grid: (lw, lh); net: (w, h); scale: the caller's ``2 - truth.w * truth.h``.
    Returns darknet's 8 deltas in that order; darknet adds them to the conv output's delta
    (``backward_gaussian_yolo_layer``), i.e. they are minus the gradient there.
    """
    targets = (truth[0] * grid[0] - cell[0], truth[1] * grid[1] - cell[1],
               math.log(truth[2] * net[0] / anchor[0]), math.log(truth[3] * net[1] / anchor[1]))
    delta = [0.0] * 8
    for k, t in enumerate(targets):
        mu, sigma = x[2 * k], x[2 * k + 1]
        in_exp = (t - mu) / sigma
        normal = math.exp(-in_exp**2 / 2) / (math.sqrt(2 * math.pi) * (sigma + 0.3))
        temp = 0.5 / (normal + 1e-9) * normal * scale
        delta[2 * k] = temp * in_exp / sigma
        delta[2 * k + 1] = temp * (in_exp**2 / sigma - 1 / (sigma + 0.3))
    return delta


# raw conv outputs at the responsible anchor (mu_x, mu_y, mu_w, mu_h, sigma_x .. sigma_h):
# a moderate case, one with small sigmas, and one where mu_w sits ~6 sigma_w off its target
# so that darknet's density / (density + 1e-9) weight is far from 1
DARKNET_CASES = [
    (MU_RAW, SIGMA_RAW),
    ((1.2, -0.8, -0.05, -0.6), (-3.0, -2.5, -3.5, -2.0)),
    ((0.0, 0.4, 0.63, -0.7), (0.2, -1.0, -2.1972, 0.8)),
]


@pytest.mark.parametrize('mu_raw,sigma_raw', DARKNET_CASES)
def test_darknet_gradient_equals_delta_gaussian_yolo_box(mu_raw, sigma_raw):
    head = _one_level_head()
    assert head.box_gradient == 'darknet'  # the official code's gradient is the default
    pred = _hand_built_pred()
    pred[0, :4, 0, 0] = torch.tensor(mu_raw)
    pred[0, 4:8, 0, 0] = torch.tensor(sigma_raw)
    pred.requires_grad_(True)
    head.loss_by_feat([pred], [GT], META64)['loss_bbox'][0].backward()

    mu = (_sigmoid(mu_raw[0]), _sigmoid(mu_raw[1]), mu_raw[2], mu_raw[3])
    x = [v for m, s in zip(mu, sigma_raw) for v in (m, _sigmoid(s))]
    box = GT.bboxes[0].tolist()  # cell (0, 0) of the 2x2 grid, anchor 32x32, input 64x64
    truth = ((box[0] + box[2]) / 128, (box[1] + box[3]) / 128, (box[2] - box[0]) / 64,
             (box[3] - box[1]) / 64)
    delta = _darknet_delta(truth, x, (32, 32), (0, 0), (2, 2), (64, 64),
                           2 - truth[2] * truth[3])
    order = [0, 2, 4, 6, 1, 3, 5, 7]  # darknet's interleaved order -> the head's mu's, sigmas
    expected = -torch.tensor([delta[k] for k in order])
    torch.testing.assert_close(pred.grad[0, :8, 0, 0], expected, rtol=1e-4, atol=1e-6)
    assert not pred.grad[0, :8, 1:, 1:].any()  # no box gradient at other anchors


@pytest.mark.parametrize('mu_raw,sigma_raw', DARKNET_CASES)
def test_autograd_option_is_the_sigmoid_derivative_times_darknet(mu_raw, sigma_raw):
    grads = {}
    for gradient in ('darknet', 'autograd'):
        pred = _hand_built_pred()
        pred[0, :4, 0, 0] = torch.tensor(mu_raw)
        pred[0, 4:8, 0, 0] = torch.tensor(sigma_raw)
        pred.requires_grad_(True)
        head = _one_level_head(box_gradient=gradient)
        losses = head.loss_by_feat([pred], [GT], META64)
        sum(sum(v) for v in losses.values()).backward()
        grads[gradient] = pred.grad[0, :, 0, 0]
    s = pred[0, :8, 0, 0].detach().sigmoid()
    factor = s * (1 - s)
    factor[2:4] = 1  # mu_w, mu_h have no logistic
    torch.testing.assert_close(grads['autograd'][:8], grads['darknet'][:8] * factor)
    torch.testing.assert_close(grads['autograd'][8:], grads['darknet'][8:])  # obj, classes


def test_darknet_gradient_leaves_the_forward_values_unchanged():
    pred = _hand_built_pred()
    values = [_one_level_head(box_gradient=g).loss_by_feat([pred], [GT], META64)
              for g in ('darknet', 'autograd')]
    for key in values[0]:
        assert torch.equal(values[0][key][0], values[1][key][0])
    with pytest.raises(ValueError, match="box_gradient='official'.*'darknet', 'autograd'"):
        _one_level_head(box_gradient='official')


# ------------------------------------------- mmdet's YOLOv3 head test, on the Gaussian head
def test_mmdet_yolov3_head_test_pattern_without_batch_input_shape():
    """mmdet's tests/test_models/test_dense_heads/test_yolo_head.py, with the Gaussian head:
    image metas without ``batch_input_shape``, empty and non-empty ground truth."""
    s = 256
    img_metas = [{'img_shape': (s, s, 3), 'scale_factor': 1}]
    head = GaussianYOLOV3Head(num_classes=4, in_channels=[1, 1, 1], out_channels=[1, 1, 1],
                              train_cfg=TRAIN_CFG)
    head.init_weights()
    feats = [torch.rand(1, 1, s // stride[1], s // stride[0])
             for stride in head.prior_generator.strides]
    pred_maps, = head.forward(feats)

    empty = InstanceData(bboxes=torch.empty((0, 4)), labels=torch.LongTensor([]))
    losses = head.loss_by_feat(pred_maps, [empty], img_metas)
    assert sum(losses['loss_conf']).item() > 0
    assert sum(losses['loss_cls']).item() == 0 and sum(losses['loss_bbox']).item() == 0

    one = InstanceData(bboxes=torch.Tensor([[23.6667, 23.8757, 238.6326, 151.8874]]),
                       labels=torch.LongTensor([2]))
    losses = head.loss_by_feat(pred_maps, [one], img_metas)
    for key in ('loss_conf', 'loss_cls', 'loss_bbox'):
        assert sum(losses[key]).item() > 0, key
    # without batch_input_shape the input is what the stride-32 grid covers: 256 x 256 here
    with_shape = head.loss_by_feat(pred_maps, [one], [dict(img_metas[0],
                                                           batch_input_shape=(s, s))])
    for key in losses:
        assert torch.equal(sum(losses[key]), sum(with_shape[key])), key


# ------------------------------------------------------- uncertainty: pixels, export, drawing
def test_bbox_std_is_the_sigmas_in_pixels_and_rescales_with_the_boxes():
    head = _one_level_head().eval()
    pred = torch.full((1, ATTRIB, 2, 2), -20.0)  # every anchor but (0, 0) below conf_thr
    pred[0, :4, 0, 0] = torch.tensor(MU_RAW)
    pred[0, 4:8, 0, 0] = torch.tensor(SIGMA_RAW)
    pred[0, 8:, 0, 0] = 3.0
    meta = [dict(META64[0], scale_factor=(2.0, 4.0))]
    res = head.predict_by_feat([pred], meta, with_nms=False)[0]
    assert len(res) == NUM_CLASSES  # one box, scored for each class
    sig = [_sigmoid(s) for s in SIGMA_RAW]
    w, h = 32 * math.exp(MU_RAW[2]), 32 * math.exp(MU_RAW[3])  # the 32 x 32 anchor, scaled
    std_x, std_y = math.hypot(32 * sig[0], w / 2 * sig[2]), math.hypot(32 * sig[1], h / 2 * sig[3])
    torch.testing.assert_close(res.bbox_std[0], torch.tensor([std_x, std_y, std_x, std_y]))
    torch.testing.assert_close(res.bbox_uncertainty[0], torch.tensor(sig))
    scaled = head.predict_by_feat([pred], meta, rescale=True, with_nms=False)[0]
    torch.testing.assert_close(scaled.bbox_std[0],
                               torch.tensor([std_x / 2, std_y / 4, std_x / 2, std_y / 4]))
    torch.testing.assert_close(scaled.bboxes[0], res.bboxes[0] / torch.tensor([2., 4., 2., 4.]))


def test_inferencer_returns_and_saves_the_uncertainty(tmp_path):
    import json

    import mmcv
    from mmdet.apis import DetInferencer as MMDetInferencer

    from mmext.apis import DetInferencer
    from mmext.visualization import UncertaintyDetLocalVisualizer

    cfg = Config.fromfile(osp.join(CFG_DIR, 'gaussian-yolov3_mobilenetv2_synthetic.py'))
    cfg.model.test_cfg.update(conf_thr=0, score_thr=0, max_per_img=5)  # random weights
    inferencer = DetInferencer(cfg, weights=None, device='cpu', palette='coco')
    assert isinstance(inferencer.visualizer, UncertaintyDetLocalVisualizer)  # the config's
    img = (np.random.RandomState(0).rand(64, 80, 3) * 255).astype(np.uint8)
    path = str(tmp_path / 'shapes.png')
    mmcv.imwrite(img, path)
    out = inferencer([path, img], out_dir=str(tmp_path / 'out'), no_save_pred=False,
                     return_datasamples=False)
    for pred, name in zip(out['predictions'], ('shapes', '0')):  # mmdet numbers ndarrays
        assert len(pred['bboxes']) == 5
        sig = np.array(pred['bbox_uncertainty'])
        assert sig.shape == (5, 4) and (sig > 0).all() and (sig < 1).all()
        assert np.array(pred['bbox_std']).shape == (5, 4)
        saved = json.load(open(tmp_path / 'out' / 'preds' / f'{name}.json'))
        assert saved['bbox_uncertainty'] == pred['bbox_uncertainty']
        assert saved['bboxes'] == pred['bboxes']
    assert (tmp_path / 'out' / 'vis' / 'shapes.png').exists()
    # mmdet's own inferencer drops them: the reason for the subclass
    plain = MMDetInferencer(cfg, weights=None, device='cpu', palette='coco')
    assert 'bbox_uncertainty' not in plain(path, return_datasamples=False)['predictions'][0]


def _drawn(vis, instances):
    from mmdet.structures import DetDataSample
    vis.dataset_meta = dict(classes=('a', 'b'), palette=[(255, 0, 0), (0, 255, 0)])
    sample = DetDataSample()
    sample.pred_instances = instances
    vis.add_datasample('x', np.full((200, 200, 3), 255, np.uint8), sample, draw_gt=False,
                       show=False)
    return vis.get_image()


def test_visualizer_draws_each_box_sigma_extent():
    from mmdet.visualization import DetLocalVisualizer

    from mmext.visualization import UncertaintyDetLocalVisualizer
    from mmext.visualization.local_visualizer import uncertainty_boxes

    boxes = torch.tensor([[40., 40., 160., 120.], [100., 130., 130., 150.]])
    std = torch.tensor([[10., 5., 10., 5.], [20., 20., 20., 20.]])
    outer, inner = uncertainty_boxes(boxes, std, 1.0, (200, 200))
    torch.testing.assert_close(outer, torch.tensor([[30., 35., 170., 125.],
                                                    [80., 110., 150., 170.]]))
    # the small box's inner box collapses to its centre instead of inverting
    torch.testing.assert_close(inner, torch.tensor([[50., 45., 150., 115.],
                                                    [115., 140., 115., 140.]]))
    torch.testing.assert_close(uncertainty_boxes(boxes, std, 5.0, (200, 200))[0][0],
                               torch.tensor([0., 15., 200., 145.]))  # clipped to the image

    instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1]),
                             scores=torch.tensor([0.9, 0.8]), bbox_std=std)
    ours = _drawn(UncertaintyDetLocalVisualizer(name='test_unc', line_width=2), instances)
    plain = _drawn(DetLocalVisualizer(name='test_plain', line_width=2), instances)
    red = (ours[..., 0] > 200) & (ours[..., 1] < 150)
    for x in (30, 50, 170, 150):  # outer and inner vertical edges of the first box
        # (rows below its label)
        assert red[70:110, x - 1:x + 2].any(), x
        assert (plain[70:110, x - 1:x + 2] == 255).all(), x
    # without bbox_std (ground truth, other models) it draws exactly what mmdet's does
    del instances.bbox_std
    assert np.array_equal(_drawn(UncertaintyDetLocalVisualizer(name='test_unc2', line_width=2),
                                 instances),
                          _drawn(DetLocalVisualizer(name='test_plain2', line_width=2), instances))
    with pytest.raises(ValueError, match='num_sigmas=0 must be a number > 0'):
        UncertaintyDetLocalVisualizer(name='test_bad', num_sigmas=0)
