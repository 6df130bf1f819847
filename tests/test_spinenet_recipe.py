"""The official RetinaNet-SpineNet recipe configs against the official figures.

The constants below are copied from the official configuration files (cited per block); each
``*_official-*_coco.py`` config must reproduce them in mmdet's terms. The box-loss translation
(TF Huber over 4 x (positives + 1) times box_loss_weight -> mmdet SmoothL1 with a loss weight) is
checked numerically, value and gradient, on one anchor.
"""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.analysis import build_model, dummy_det_samples

# tensorflow/tpu models/official/detection/configs/retinanet_config.py, RETINANET_CFG
TPU_RETINANET_LOSS = dict(focal_loss_alpha=0.25, focal_loss_gamma=1.5, huber_loss_delta=0.1,
                          box_loss_weight=50)
TPU_RETINANET_PARSER = dict(match_threshold=0.5, unmatched_threshold=0.5)
TPU_RETINANET_HEAD = dict(num_convs=4, num_filters=256)
# tensorflow/tpu models/official/detection/configs/detection_config.py, DETECTION_CFG
TPU_ANCHOR = dict(num_scales=3, aspect_ratios=[1.0, 2.0, 0.5], anchor_size=4.0)
TPU_POSTPROCESS = dict(nms_iou_threshold=0.5, score_threshold=0.05, pre_nms_num_boxes=5000,
                       max_total_size=100)
# tensorflow/tpu models/official/detection/configs/base_config.py, BASE_CFG
TPU_BASE = dict(momentum=0.9, warmup_learning_rate=0.0067, batch_norm_momentum=0.997,
                batch_norm_epsilon=1e-4)
# tensorflow/tpu models/official/detection/configs/spinenet/spinenet{id}_retinanet.yaml
TPU_YAML = {
    '49S': dict(total_steps=231500, train_batch_size=256, warmup_steps=2000,
                init_learning_rate=0.28, learning_rate_levels=[0.028, 0.0028],
                learning_rate_steps=[217610, 226870], l2_weight_decay=4e-5,
                gradient_clip_norm=10.0, activation='swish', init_drop_connect_rate=0.2,
                anchor_size=3.0, output_size=640, aug_scale=(0.5, 2.0), num_filters=128),
    '49': dict(total_steps=231500, train_batch_size=256, warmup_steps=2000,
               init_learning_rate=0.28, learning_rate_levels=[0.028, 0.0028],
               learning_rate_steps=[217610, 226870], l2_weight_decay=4e-5,
               gradient_clip_norm=10.0, activation='swish', init_drop_connect_rate=0.2,
               anchor_size=3.0, output_size=640, aug_scale=(0.5, 2.0)),
    '96': dict(total_steps=231500, train_batch_size=256, warmup_steps=2000,
               init_learning_rate=0.28, learning_rate_levels=[0.028, 0.0028],
               learning_rate_steps=[217610, 226870], l2_weight_decay=4e-5,
               gradient_clip_norm=10.0, activation='swish', init_drop_connect_rate=0.2,
               anchor_size=3.0, output_size=1024, aug_scale=(0.5, 2.0)),
    # no anchor_size: DETECTION_CFG's 4.0
    '143': dict(total_steps=231500, train_batch_size=256, warmup_steps=2000,
                init_learning_rate=0.28, learning_rate_levels=[0.028, 0.0028],
                learning_rate_steps=[217610, 226870], l2_weight_decay=4e-5,
                gradient_clip_norm=10.0, activation='swish', init_drop_connect_rate=0.16,
                output_size=1280, aug_scale=(0.1, 1.9)),
    '190': dict(total_steps=185200, train_batch_size=256, warmup_steps=2000,
                init_learning_rate=0.3, learning_rate_levels=[0.03, 0.003],
                learning_rate_steps=[171310, 180570], l2_weight_decay=4e-5,
                gradient_clip_norm=10.0, activation='swish', init_drop_connect_rate=0.2,
                output_size=1280, aug_scale=(0.1, 1.9), num_filters=512, num_convs=7),
}
# TF Model Garden official/vision/configs/retinanet.py, Losses and Parser defaults (the TF2
# release agrees on every loss and matcher value)
MODEL_GARDEN_LOSSES = dict(focal_loss_alpha=0.25, focal_loss_gamma=1.5, huber_loss_delta=0.1,
                           box_loss_weight=50)
MODEL_GARDEN_PARSER = dict(match_threshold=0.5, unmatched_threshold=0.5)
COCO_TRAIN_IMAGES = 118287


def official_config(arch):
    paths = glob.glob(f'configs/spinenet/retinanet_spinenet-{arch.lower()}_official-*_coco.py')
    assert len(paths) == 1, paths
    return Config.fromfile(paths[0]), osp.basename(paths[0])


def test_tf1_and_tf2_releases_agree_on_losses_and_matcher():
    assert TPU_RETINANET_LOSS == MODEL_GARDEN_LOSSES
    assert TPU_RETINANET_PARSER == MODEL_GARDEN_PARSER


@pytest.mark.parametrize('arch', sorted(TPU_YAML))
def test_official_recipe_values(arch):
    cfg, name = official_config(arch)
    y = {**TPU_RETINANET_HEAD, 'anchor_size': TPU_ANCHOR['anchor_size'], **TPU_YAML[arch]}
    loss = TPU_RETINANET_LOSS
    head, backbone = cfg.model.bbox_head, cfg.model.backbone
    # the name says what it is
    gpus, per_gpu = 8, 32
    assert f'8xb{per_gpu}-{y["output_size"]}-{y["total_steps"] // 1000}k' in name
    assert backbone.arch == arch
    # losses
    assert head.loss_cls.type == 'FocalLoss' and head.loss_cls.use_sigmoid
    assert head.loss_cls.gamma == loss['focal_loss_gamma']
    assert head.loss_cls.alpha == loss['focal_loss_alpha']
    assert head.loss_cls.loss_weight == 1.0
    assert head.loss_bbox.type == 'SmoothL1Loss'
    assert head.loss_bbox.beta == loss['huber_loss_delta']
    assert head.loss_bbox.loss_weight == pytest.approx(
        loss['box_loss_weight'] * loss['huber_loss_delta'] / 4)
    assert list(head.bbox_coder.target_stds) == [1.0] * 4  # FasterRcnnBoxCoder(), no scaling
    # matcher
    assigner = cfg.model.train_cfg.assigner
    assert assigner.pos_iou_thr == TPU_RETINANET_PARSER['match_threshold']
    assert assigner.neg_iou_thr == TPU_RETINANET_PARSER['unmatched_threshold']
    assert assigner.min_pos_iou == 0.0  # force_match_for_each_row
    # anchors
    assert head.anchor_generator.octave_base_scale == y['anchor_size']
    assert head.anchor_generator.scales_per_octave == TPU_ANCHOR['num_scales']
    assert sorted(head.anchor_generator.ratios) == sorted(TPU_ANCHOR['aspect_ratios'])
    assert list(head.anchor_generator.strides) == [8, 16, 32, 64, 128]
    # head
    assert head.feat_channels == y['num_filters'] and head.stacked_convs == y['num_convs']
    # backbone and norm
    assert backbone.act_cfg.type == 'SiLU' and y['activation'] == 'swish'
    assert backbone.drop_path_rate == y['init_drop_connect_rate']
    for norm in (backbone.norm_cfg, head.norm_cfg):
        assert norm.type == 'SyncBN'
        assert norm.momentum == pytest.approx(1 - TPU_BASE['batch_norm_momentum'])
        assert norm.eps == TPU_BASE['batch_norm_epsilon']
    # data
    resize = next(t for t in cfg.train_pipeline if t.type == 'RandomResize')
    assert tuple(resize.scale) == (y['output_size'],) * 2
    assert tuple(resize.ratio_range) == y['aug_scale']
    crop = next(t for t in cfg.train_pipeline if t.type == 'RandomCrop')
    assert tuple(crop.crop_size) == (y['output_size'],) * 2
    assert any(t.type == 'RandomFlip' and t.prob == 0.5 for t in cfg.train_pipeline)
    test_resize = next(t for t in cfg.test_pipeline if t.type == 'Resize')
    assert tuple(test_resize.scale) == (y['output_size'],) * 2
    # schedule
    assert cfg.train_dataloader.batch_size * gpus == y['train_batch_size']
    assert cfg.auto_scale_lr.base_batch_size == y['train_batch_size']
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == y['total_steps']
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == 'SGD' and opt.momentum == TPU_BASE['momentum']
    assert opt.lr == y['init_learning_rate']
    # L2 on kernels only (base_config REGULARIZATION_VAR_REGEX '.*(kernel|weight):0$'); the
    # gradient of l2_weight_decay * tf.nn.l2_loss(w) is SGD's weight_decay * w
    assert opt.weight_decay == y['l2_weight_decay']
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0.0
    assert cfg.optim_wrapper.paramwise_cfg.bias_decay_mult == 0.0
    assert cfg.optim_wrapper.clip_grad.max_norm == y['gradient_clip_norm']
    warmup, steps = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and not warmup.by_epoch
    assert warmup.begin == 0 and warmup.end == y['warmup_steps']
    assert warmup.start_factor * opt.lr == pytest.approx(TPU_BASE['warmup_learning_rate'])
    assert steps.type == 'MultiStepLR' and not steps.by_epoch
    assert list(steps.milestones) == y['learning_rate_steps']
    assert [opt.lr * steps.gamma**(i + 1) for i in range(2)] == \
        pytest.approx(y['learning_rate_levels'])
    # test-time post-processing
    assert cfg.model.test_cfg.nms_pre == TPU_POSTPROCESS['pre_nms_num_boxes']
    assert cfg.model.test_cfg.score_thr == TPU_POSTPROCESS['score_threshold']
    assert cfg.model.test_cfg.nms.iou_threshold == TPU_POSTPROCESS['nms_iou_threshold']
    assert cfg.model.test_cfg.max_per_img == TPU_POSTPROCESS['max_total_size']


def test_official_schedule_is_about_500_coco_epochs():
    y = TPU_YAML['49']
    epochs = y['total_steps'] * y['train_batch_size'] / COCO_TRAIN_IMAGES
    assert epochs == pytest.approx(501.0, abs=0.1)


def test_350_epoch_configs_say_they_are_not_the_official_recipe():
    for path in glob.glob('configs/spinenet/retinanet_spinenet-*-350e_coco.py'):
        text = open(path).read()
        assert 'not the official recipe' in text.lower() or 'NOT the official' in text, path
        assert "the paper's recipe" not in text, path


def _tf_huber(x, delta):
    """tf.losses.huber_loss per element: 0.5 x^2 if |x| <= delta, else
    0.5 delta^2 + delta (|x| - delta)."""
    a = x.abs()
    return torch.where(a <= delta, 0.5 * x**2, 0.5 * delta**2 + delta * (a - delta))


def _official_box_loss(pred, target, num_positives, delta, weight):
    """box_loss_weight x RetinanetBoxLoss: the Huber loss of the non-zero targets, summed and
    divided by 4 x (positives + 1) (tensorflow/tpu modeling/losses.py: num_positives_sum =
    sum(num_positives) + 1, box_loss divides by num_positives_sum * 4)."""
    mask = (target != 0).float()
    return weight * (_tf_huber(target - pred, delta) * mask).sum() / (4.0 * (num_positives + 1))


@pytest.mark.parametrize('target', [
    [0.05, -0.03, 0.08, 0.02],  # every coordinate within delta: the quadratic part
    [0.4, -0.7, 1.2, -0.25],  # every coordinate beyond delta: the linear part
])
def test_box_loss_weight_gives_the_official_gradient_on_one_anchor(target):
    from mmdet.registry import MODELS
    cfg, _ = official_config('49')
    loss_fn = MODELS.build(cfg.model.bbox_head.loss_bbox)
    delta = TPU_RETINANET_LOSS['huber_loss_delta']
    weight = TPU_RETINANET_LOSS['box_loss_weight']
    num_positives = 1  # one positive anchor in the batch
    target = torch.tensor([target])
    pred_tf = torch.zeros(1, 4, requires_grad=True)
    official = _official_box_loss(pred_tf, target, num_positives, delta, weight)
    official.backward()
    pred_mm = torch.zeros(1, 4, requires_grad=True)
    # mmdet's RetinaHead: loss_bbox(pred, target, weights, avg_factor=positives); TF's + 1 in the
    # normaliser is the one difference left, so it is passed here to compare like with like
    ours = loss_fn(pred_mm, target, torch.ones(1, 4), avg_factor=num_positives + 1)
    ours.backward()
    assert ours.item() == pytest.approx(official.item(), rel=1e-6)
    assert torch.allclose(pred_mm.grad, pred_tf.grad, rtol=1e-6, atol=0)
    # and what mmdet actually divides by: the positives, (N + 1) / N larger
    ours_n = loss_fn(pred_mm.detach(), target, torch.ones(1, 4), avg_factor=num_positives)
    assert ours_n.item() == pytest.approx(official.item() * (num_positives + 1) / num_positives)


def test_focal_loss_equals_the_official_formula():
    """tensorflow/tpu modeling/losses.py focal_loss: alpha_t (1 - p_t)^gamma CE, summed over
    anchors and classes, divided by the normaliser."""
    from mmdet.registry import MODELS
    cfg, _ = official_config('49')
    loss_fn = MODELS.build(cfg.model.bbox_head.loss_cls)
    torch.manual_seed(0)
    logits = torch.randn(6, 5) * 3
    labels = torch.tensor([0, 3, 5, 5, 1, 5])  # 5 = background (mmdet's num_classes)
    onehot = torch.zeros(6, 5)
    onehot[labels < 5, labels[labels < 5]] = 1
    a, g = TPU_RETINANET_LOSS['focal_loss_alpha'], TPU_RETINANET_LOSS['focal_loss_gamma']
    p = logits.sigmoid()
    p_t = onehot * p + (1 - onehot) * (1 - p)
    alpha_t = onehot * a + (1 - onehot) * (1 - a)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, onehot, reduction='none')
    normaliser = 3.0
    official = (alpha_t * (1 - p_t)**g * ce).sum() / normaliser
    ours = loss_fn(logits, labels, avg_factor=normaliser)
    assert ours.item() == pytest.approx(official.item(), rel=1e-5)


def test_official_recipe_49s_builds_and_takes_a_training_step():
    from mmengine.structures import InstanceData
    cfg, _ = official_config('49S')
    cfg.model.bbox_head.num_classes = 3
    model = build_model(cfg).train()
    size = 256  # level 7 is 2x2: BN in training mode needs more than one value
    samples = dummy_det_samples((size, size))
    samples[0].gt_instances = InstanceData(
        bboxes=torch.tensor([[40.0, 60.0, 180.0, 200.0]]), labels=torch.tensor([1]))
    losses = model.loss(torch.rand(1, 3, size, size), samples)
    total, _ = model.parse_losses(losses)  # per-level lists summed as mmengine does
    assert math.isfinite(total.item())
    total.backward()
