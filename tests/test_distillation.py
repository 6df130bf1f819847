"""Knowledge distillation (Hinton et al., arXiv:1503.02531): loss values, frozen teacher,
student-only checkpoints, head-output alignment."""
import copy
import math
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner, load_checkpoint, save_checkpoint

import mmext  # noqa: F401
from mmext.models.detectors.distillation import (TeacherLoadError, classification_outputs,
                                                 cls_layout)
from mmext.models.losses import SoftTargetDistillLoss, soft_target_kl
from mmext.registry import MODELS

from conftest import ROOT


S_LOGITS = [1.0, 2.0, 0.5]
T_LOGITS = [2.0, 0.0, 1.0]
DISTILL_CFG = osp.join(ROOT, 'configs', 'distillation',
                       'centernet_spinenet-49s_to_mixnet-s_synthetic.py')
STUDENT_CFG = osp.join(ROOT, 'configs', 'distillation', 'centernet_mixnet-s_synthetic.py')


def _hand_softmax_kl(s, t, temp):
    def softmax(z):
        e = [math.exp(v / temp) for v in z]
        return [v / sum(e) for v in e]
    ps, pt = softmax(s), softmax(t)
    return temp**2 * sum(a * math.log(a / b) for a, b in zip(pt, ps))


def _hand_sigmoid_kl(s, t, temp):
    def sig(v):
        return 1 / (1 + math.exp(-v / temp))
    return temp**2 * sum(sig(b) * math.log(sig(b) / sig(a)) +
                         (1 - sig(b)) * math.log((1 - sig(b)) / (1 - sig(a)))
                         for a, b in zip(s, t))


@pytest.mark.parametrize('form,temp,expected', [
    ('softmax', 1.0, 0.6643069), ('softmax', 4.0, 0.8284392),
    ('sigmoid', 1.0, 0.5272562), ('sigmoid', 4.0, 0.6454200)])
def test_loss_matches_hand_computed_value(form, temp, expected):
    hand = (_hand_softmax_kl if form == 'softmax' else _hand_sigmoid_kl)(S_LOGITS, T_LOGITS, temp)
    assert hand == pytest.approx(expected, abs=1e-6)
    loss = SoftTargetDistillLoss(temperature=temp, loss_weight=0.5, form=form)
    got = loss(torch.tensor([S_LOGITS]), torch.tensor([T_LOGITS]))
    assert got.item() == pytest.approx(0.5 * expected, rel=1e-5)


def test_loss_is_zero_for_equal_logits_and_averages_over_locations():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, 4) * 3
    for form in ('softmax', 'sigmoid'):
        for temp in (1.0, 4.0):
            assert soft_target_kl(logits, logits.clone(), temp, form).abs().max() < 1e-5
    # two locations: one equal, one the hand pair -> the mean is half the pair's value
    s = torch.tensor([S_LOGITS, T_LOGITS])
    t = torch.tensor([T_LOGITS, T_LOGITS])
    got = SoftTargetDistillLoss(temperature=4.0, form='sigmoid')(s, t)
    assert got.item() == pytest.approx(0.6454200 / 2, rel=1e-5)
    # 'auto' takes the head's form
    auto = SoftTargetDistillLoss(temperature=4.0)
    assert auto(s, t, form='softmax').item() == pytest.approx(0.8284392 / 2, rel=1e-5)


def test_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match='form'):
        SoftTargetDistillLoss(form='l2')
    with pytest.raises(ValueError, match='temperature'):
        SoftTargetDistillLoss(temperature=0)
    with pytest.raises(ValueError, match='differ in shape'):
        soft_target_kl(torch.zeros(2, 3), torch.zeros(2, 4))


# ------------------------------------------------------------------ tiny detectors
def _centernet(base_channels, num_classes=3, num_stages=2):
    """A small CenterNet: ResNet-18 layout with few channels, its stride-8 output."""
    return dict(
        type='CenterNet',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, base_channels=base_channels, out_indices=(1, ),
                      norm_eval=False, init_cfg=None),
        neck=None,
        bbox_head=dict(type='CenterNetStackedHead', num_stages=num_stages,
                       in_channels=base_channels * 2, feat_channels=8, num_classes=num_classes,
                       loss_center_heatmap=dict(type='GaussianFocalLoss', loss_weight=1.0),
                       loss_wh=dict(type='L1Loss', loss_weight=0.1),
                       loss_offset=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=None,
        test_cfg=dict(topk=20, local_maximum_kernel=3, max_per_img=20))


def _distiller(teacher_model, student_base=4, **kw):
    student = _centernet(student_base)
    student.pop('type')
    cfg = dict(type='DistillationSingleStageDetector', **student,
               teacher_config=dict(model=teacher_model),
               distill_loss=dict(type='SoftTargetDistillLoss', temperature=2.0, loss_weight=1.0))
    cfg.update(kw)
    return MODELS.build(cfg)


def _batch(n=2, size=64):
    torch.manual_seed(1)
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                        batch_input_shape=(size, size)))
        boxes = torch.tensor([[8., 8., 30., 36.], [34., 20., 60., 50.]])
        s.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 2]))
        samples.append(s)
    return dict(inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
                        for _ in range(n)], data_samples=samples)


def _prep(model):
    data = model.data_preprocessor(_batch(), True)
    return data['inputs'], data['data_samples']


def test_train_step_trains_the_student_and_leaves_the_teacher_untouched():
    model = _distiller(_centernet(8))
    model.init_weights()
    model.train()
    assert not model.teacher.training  # train() keeps the teacher in eval mode
    teacher_ids = {id(p) for p in model.teacher.parameters()}
    assert not teacher_ids & {id(p) for p in model.parameters()}  # not optimised
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.state_dict())
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.1)))
    log_vars = model.train_step(_batch(), optim)
    assert log_vars['loss_kd_heatmap'] > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    for k, v in model.teacher.state_dict().items():  # BN running stats included
        assert torch.equal(v, teacher_before[k]), k
    changed = [k for k, v in model.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, student_before[k])]
    assert any(k.startswith('backbone.') for k in changed)
    assert not any(k.startswith('teacher') for k in model.state_dict())


def test_distillation_gradient_points_the_student_at_the_teacher():
    """With the detection loss removed, steps on the KD term alone shrink it."""
    model = _distiller(_centernet(8), centernet_stages='last')
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='Adam', lr=3e-3)))
    data = model.data_preprocessor(_batch(), True)
    kd = []
    for _ in range(6):
        feats = model.extract_feat(data['inputs'])
        with torch.no_grad():
            t_outs = model.teacher.bbox_head(model.teacher.extract_feat(data['inputs']))
        loss = model.soft_target_losses(model.bbox_head(feats), t_outs)['loss_kd_heatmap']
        optim.update_params(loss)
        kd.append(loss.item())
    assert kd[-1] < 0.8 * kd[0], kd


def test_class_and_stage_mismatches_fail_when_the_model_is_built():
    with pytest.raises(ValueError, match=r'student head CenterNetStackedHead has '
                                         r'num_classes=3, the teacher head '
                                         r'CenterNetStackedHead num_classes=4'):
        _distiller(_centernet(8, num_classes=4))
    # 'all' stages: 2 vs 1
    with pytest.raises(ValueError, match=r'stages: student CenterNetStackedHead \[1, 1\] vs '
                                         r'teacher CenterNetStackedHead \[1\]'):
        _distiller(_centernet(8, num_stages=1))
    model = _distiller(_centernet(8, num_stages=1), centernet_stages='last')
    assert 'loss_kd_heatmap' in model.loss(*_prep(model))


def test_feature_map_size_mismatch_raises_naming_the_shapes():
    """Sizes depend on the input, so they are checked at the step: a stride-4 teacher."""
    teacher = _centernet(8)
    teacher['backbone']['out_indices'] = (0, )
    teacher['bbox_head']['in_channels'] = 8
    model = _distiller(teacher, centernet_stages='last')
    with pytest.raises(ValueError, match=r'heatmap_0: student \(2, 8, 8, 1, 3\) vs teacher '
                                         r'\(2, 16, 16, 1, 3\)'):
        model.loss(*_prep(model))


def test_retinanet_anchor_mismatch_is_rejected():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'distillation',
                                   'retinanet_spinenet-49s_to_mixnet-s_synthetic.py'))
    cfg.model.teacher_ckpt = None
    cfg.model.bbox_head.anchor_generator.octave_base_scale = 4  # mmdet's default, not SpineNet's
    with pytest.raises(ValueError, match='anchors differ'):
        MODELS.build(cfg.model)


def test_yolo_outputs_split_into_objectness_and_classes():
    head = MODELS.build(dict(type='GaussianYOLOV3Head', num_classes=3, in_channels=[8, 8, 8],
                             out_channels=[8, 8, 8]))
    feats = [torch.randn(1, 8, s, s) for s in (4, 8, 16)]
    outs = head(feats)
    items = classification_outputs(head, outs)
    assert [name for name, *_ in items[:2]] == ['obj_l0', 'cls_l0']
    raw = outs[0][0].view(1, 3, 8 + 1 + 3, 4, 4)  # 3 anchors x (8 gaussian, obj, 3 classes)
    name, cls, form, weight = items[1]
    assert cls.shape == (1, 4, 4, 3, 3) and form == 'sigmoid'
    assert torch.equal(cls[0, 1, 2, 0], raw[0, 0, 9:, 1, 2])
    assert torch.allclose(weight[0, 1, 2, 0], raw[0, 0, 8, 1, 2].sigmoid())
    with pytest.raises(TypeError, match='not supported'):
        classification_outputs(torch.nn.Conv2d(1, 1, 1), outs)


def test_feature_imitation_adapter_stays_out_of_the_checkpoint():
    model = _distiller(_centernet(8), feature_loss=dict(
        type='FeatureImitationLoss', student_channels=8, teacher_channels=16, loss_weight=1.0))
    losses = model.loss(*_prep(model))
    assert losses['loss_feat_imitation'] > 0
    assert any('feature_loss' in n for n, _ in model.named_parameters())  # trained...
    assert not any('feature_loss' in k for k in model.state_dict())  # ...not saved


def test_checkpoint_loads_into_the_plain_student_config_and_evaluates(tmp_path, synthetic_root):
    """A real Runner trains the synthetic pair's distiller (random teacher) for a few
    iterations; its checkpoint loads strictly into the student config and tests as tools/test.py
    does."""
    cfg = Config.fromfile(DISTILL_CFG)
    cfg.model.teacher_ckpt = None
    cfg.work_dir = str(tmp_path)
    small = dict(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.update(small, batch_sampler=None)
    cfg.train_dataloader.dataset.indices = 4
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=100)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook', draw=False)
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (128, 128)
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = osp.join(tmp_path, 'epoch_1.pth')
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    assert not any(k.startswith('teacher') for k in state)

    student_cfg = Config.fromfile(STUDENT_CFG)
    student = MODELS.build(student_cfg.model)
    load_checkpoint(student, ckpt, map_location='cpu', strict=True)
    assert torch.equal(student.state_dict()['bbox_head.heatmap_head.2.bias'],
                       runner.model.state_dict()['bbox_head.heatmap_head.2.bias'])

    student_cfg.work_dir = str(tmp_path / 'test')
    student_cfg.load_from = ckpt
    student_cfg.test_dataloader.update(small)
    student_cfg.test_dataloader.dataset.indices = 4
    student_cfg.test_evaluator.update(format_only=False)
    metrics = Runner.from_cfg(student_cfg).test()
    assert 'coco/bbox_mAP' in metrics and metrics['coco/bbox_mAP'] >= 0


def test_saved_student_state_round_trips(tmp_path):
    model = _distiller(_centernet(8))
    save_checkpoint(model.state_dict(), str(tmp_path / 's.pth'))
    plain = MODELS.build(_centernet(4))
    load_checkpoint(plain, str(tmp_path / 's.pth'), strict=True)


def test_gaussian_yolov3_teacher_distils_a_yolov3_student():
    """Different box parametrisations (8 Gaussian values vs 4), same anchors and classes: the
    class and objectness outputs align, so the pair distils."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'gaussian_yolov3',
                                   'yolov3_mobilenetv2_synthetic.py'))
    cfg.model.update(type='DistillationSingleStageDetector',
                     teacher_config=osp.join(ROOT, 'configs', 'gaussian_yolov3',
                                             'gaussian-yolov3_mobilenetv2_synthetic.py'),
                     distill_loss=dict(type='SoftTargetDistillLoss', temperature=2.0))
    model = MODELS.build(cfg.model)
    model.init_weights()
    # a teacher that is sure about objectness everywhere: the student (prior 0.01) is far off
    for conv in model.teacher.bbox_head.convs_pred:
        conv.bias.data.view(3, -1)[:, 8] = 4.0
    losses = model.loss(*_prep(model))
    assert losses['loss_kd_obj'] > 1.0
    assert losses['loss_kd_cls'] >= 0 and torch.isfinite(losses['loss_kd_cls'])


@pytest.mark.slow
def test_tools_train_then_test_with_the_student_config(tmp_path, python, synthetic_root):
    """The user's path: tools/train.py on the distillation config, tools/test.py on the
    student config with the saved checkpoint."""
    from conftest import run_tool
    wd = str(tmp_path / 'kd')
    opts = ['model.teacher_ckpt=None', 'train_cfg.max_epochs=1',
            'train_dataloader.dataset.indices=8', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'param_scheduler=[]']
    res = run_tool([python, 'tools/train.py', DISTILL_CFG, '--work-dir', wd,
                    '--cfg-options'] + opts)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'loss_kd_heatmap' in res.stdout + res.stderr
    res = run_tool([python, 'tools/test.py', STUDENT_CFG, osp.join(wd, 'epoch_1.pth'),
                    '--cfg-options', 'test_dataloader.dataset.indices=8',
                    'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'coco/bbox_mAP' in res.stdout + res.stderr


# ------------------------------------------------------- every dense head, one adapter
_SSD300_ANCHORS = dict(type='SSDAnchorGenerator', scale_major=False, input_size=300,
                       basesize_ratio_range=(0.15, 0.9), strides=[8, 16, 32, 64, 100, 300],
                       ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]])
_ONE_ANCHOR = dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8,
                   scales_per_octave=1, strides=[8, 16, 32, 64, 128])
_POINTS = dict(strides=[8, 16, 32, 64, 128])
# (head config without num_classes / in_channels, number of levels). feat_channels 32: GN(32)
DENSE_HEADS = {
    'RetinaHead': dict(stacked_convs=1),
    'RetinaSepBNActHead': dict(stacked_convs=1, num_ins=5, norm_cfg=dict(type='BN')),
    'FreeAnchorRetinaHead': dict(stacked_convs=1),
    'FSAFHead': dict(stacked_convs=1),
    'ATSSHead': dict(stacked_convs=1),
    'PAAHead': dict(stacked_convs=1),
    'GFLHead': dict(stacked_convs=1, anchor_generator=_ONE_ANCHOR),
    'TOODHead': dict(stacked_convs=1, anchor_generator=_ONE_ANCHOR),
    'RTMDetHead': dict(stacked_convs=1),
    'SSDHead': dict(in_channels=(8, ) * 6, stacked_convs=0, feat_channels=8,
                    anchor_generator=_SSD300_ANCHORS),
    'FixedSSDHead': dict(in_channels=(8, ) * 6, stacked_convs=0, feat_channels=8,
                         anchor_generator=_SSD300_ANCHORS),
    'FCOSHead': dict(stacked_convs=1, **_POINTS),
    'AutoAssignHead': dict(stacked_convs=1, **_POINTS),
    'VFNetHead': dict(stacked_convs=1, **_POINTS),
    'FoveaHead': dict(stacked_convs=1, **_POINTS),
    'RepPointsHead': dict(stacked_convs=1, point_feat_channels=32),
    'YOLOXHead': dict(stacked_convs=1, strides=[8, 16, 32]),
    'RPNHead': dict(num_classes=1),
    'CenterNetHead': dict(),
    'CenterNetStackedHead': dict(num_stages=2),
    'YOLOV3Head': dict(in_channels=[8, 8, 8], out_channels=[8, 8, 8], feat_channels=None),
    'GaussianYOLOV3Head': dict(in_channels=[8, 8, 8], out_channels=[8, 8, 8],
                               feat_channels=None),
}


def _dense_head(name):
    cfg = dict(type=name, num_classes=3, in_channels=8, feat_channels=32)
    cfg.update(DENSE_HEADS[name])
    cfg = {k: v for k, v in cfg.items() if v is not None}
    return MODELS.build(cfg)


def _head_feats(head, size=32):
    """Per-level features of a 256 px image (SSD: its 6 levels; CenterNet: one map)."""
    gen = getattr(head, 'prior_generator', None)
    n = gen.num_levels if gen is not None else 1
    sizes = [max(size >> i, 1) for i in range(n)]
    torch.manual_seed(0)
    return tuple(torch.randn(2, 8, s, s) for s in sizes)


@pytest.mark.parametrize('name', sorted(DENSE_HEADS))
def test_every_dense_head_gives_its_class_scores_as_its_own_loss_reads_them(name):
    """One adapter: the class scores per (image, location, prior), in the order the head's own
    loss flattens them (``permute(0, 2, 3, 1).reshape(N, -1, K)``), as logits."""
    head = _dense_head(name)
    outs = head(_head_feats(head))
    layout = cls_layout(head)
    items = [it for it in classification_outputs(head, outs, layout=layout)
             if not it[0].startswith('obj')]
    maps = outs[0]
    assert len(items) == len(maps)
    softmax = name.endswith('SSDHead')
    assert layout.form == ('softmax' if softmax else 'sigmoid')
    c = head.num_classes + (1 if softmax else 0)  # SSD: classes + background
    k = layout.values_per_prior
    for (_, logits, _, _), m in zip(items, maps):
        assert logits.shape[-1] == c
        ref = m.permute(0, 2, 3, 1).reshape(2, -1, k)[..., layout.cls_start:layout.cls_start + c]
        got = logits.reshape(2, -1, c)
        if layout.activated:  # CenterNet heatmaps, TOOD scores are probabilities
            got = got.sigmoid()
        torch.testing.assert_close(got, ref.float(), rtol=1e-4, atol=1e-5)
    # the head distils against a copy of itself to 0, against another init to > 0
    same = SoftTargetDistillLoss(temperature=2.0)
    kd = sum(same(s, t, form=f) for (_, s, f, _), (_, t, _, _)
             in zip(items, items))
    assert kd.abs().item() < 1e-5
    other = _dense_head(name)
    for p in other.parameters():
        p.data.normal_(0, 0.5)
    t_items = [it for it in classification_outputs(other, other(_head_feats(head)))
               if not it[0].startswith('obj')]
    assert sum(same(s, t, form=f) for (_, s, f, _), (_, t, _, _)
               in zip(items, t_items)).item() > 1e-3


def test_unsupported_head_fails_when_the_model_is_built():
    cfg = dict(type='DistillationSingleStageDetector',
               backbone=dict(type='ResNet', depth=18, base_channels=4, out_indices=(3, ),
                             init_cfg=None),
               bbox_head=dict(type='CornerHead', num_classes=3, in_channels=32,
                              num_feat_levels=1),
               teacher_config=dict(model=_centernet(8)))
    with pytest.raises(TypeError, match='head CornerHead is not supported'):
        MODELS.build(cfg)


# ----------------------------------------------------------- SSD and FCOS students
SSD_CFG = osp.join(ROOT, 'configs', 'espnetv2', 'ssd_espnetv2-0.5_synthetic.py')
SSDLITE_CFG = osp.join(ROOT, 'configs', 'mixnet', 'ssdlite_mobilenetv2-mixconv357_synthetic.py')


def _fcos(base_channels):
    """A small FCOS: ResNet-18 layout with few channels, a 3-level FPN."""
    return dict(
        type='FCOS',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, base_channels=base_channels,
                      out_indices=(1, 2, 3), norm_eval=False, init_cfg=None),
        neck=dict(type='FPN', in_channels=[base_channels * m for m in (2, 4, 8)],
                  out_channels=16, num_outs=3),
        bbox_head=dict(type='FCOSHead', num_classes=3, in_channels=16, stacked_convs=1,
                       feat_channels=16, strides=[8, 16, 32], norm_cfg=None,
                       regress_ranges=((-1, 64), (64, 128), (128, 1e8))),
        test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=20))


def _student_pair(kind, tmp_path):
    """(distiller config, plain student config, input size); the teacher saved to disk."""
    if kind == 'fcos':
        student, teacher_cfg, size = _fcos(4), dict(model=_fcos(8)), 64
        teacher_model = teacher_cfg['model']
    else:
        path = SSD_CFG if kind == 'ssd_espnetv2' else SSDLITE_CFG
        student = Config.fromfile(path).model.to_dict()
        teacher_cfg, size = path, (300 if kind == 'ssd_espnetv2' else 320)
        teacher_model = student
    torch.manual_seed(123)
    teacher = MODELS.build(teacher_model)
    teacher.init_weights()
    t_ckpt = str(tmp_path / 'teacher.pth')
    save_checkpoint(teacher.state_dict(), t_ckpt)
    cfg = dict(copy.deepcopy(student), type='DistillationSingleStageDetector',
               teacher_config=teacher_cfg, teacher_ckpt=t_ckpt,
               distill_loss=dict(type='SoftTargetDistillLoss', temperature=2.0))
    return cfg, student, size


def _built(cfg, seed):
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def _sgd(model):
    return build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))


@pytest.mark.parametrize('kind', ['ssd_espnetv2', 'ssdlite_mixnet', 'fcos'])
def test_ssd_and_fcos_students_take_a_training_step(kind, tmp_path):
    """mmext's own SSD configs (ESPNetv2, MixConv SSDLite: a list of priors per level, softmax
    with background) and FCOS (points, sigmoid) as students of a teacher of their kind."""
    cfg, _, size = _student_pair(kind, tmp_path)
    model = _built(cfg, 0)
    assert model.cls_layouts[0].form == ('sigmoid' if kind == 'fcos' else 'softmax')
    model.train()
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.state_dict())
    log_vars = model.train_step(_batch(size=size), _sgd(model))
    assert log_vars['loss_kd_cls'] > 0
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
    changed = [k for k, v in model.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, student_before[k])]
    assert any(k.startswith('backbone.') for k in changed)
    assert any(k.startswith('bbox_head.') for k in changed)


@pytest.mark.parametrize('kind', ['ssd_espnetv2', 'fcos'])
def test_ssd_and_fcos_students_resume_from_a_checkpoint(kind, tmp_path):
    """Two steps in one go == one step, a checkpoint (student + optimizer), a rebuilt distiller
    (teacher from its checkpoint) and one more step; the checkpoint is a plain student."""
    cfg, student, size = _student_pair(kind, tmp_path)
    straight = _built(cfg, 0)
    optim = _sgd(straight)
    for _ in range(2):
        straight.train_step(_batch(size=size), optim)

    first = _built(cfg, 0)
    optim = _sgd(first)
    first.train_step(_batch(size=size), optim)
    ckpt = str(tmp_path / 'student.pth')
    save_checkpoint(dict(state_dict=first.state_dict(), optimizer=optim.state_dict()), ckpt)

    resumed = _built(cfg, 1)  # another init: everything must come from the checkpoint
    optim = _sgd(resumed)
    state = load_checkpoint(resumed, ckpt, map_location='cpu', strict=True)
    optim.load_state_dict(state['optimizer'])
    resumed.train_step(_batch(size=size), optim)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    for k, v in straight.teacher.state_dict().items():
        assert torch.equal(v, resumed.teacher.state_dict()[k]), k

    plain = MODELS.build(copy.deepcopy(student))
    load_checkpoint(plain, ckpt, map_location='cpu', strict=True)
    assert torch.equal(plain.state_dict()['bbox_head.' + _first_cls_key(plain)],
                       first.state_dict()['bbox_head.' + _first_cls_key(plain)])


def _first_cls_key(detector):
    return next(k for k in detector.bbox_head.state_dict() if 'cls' in k)


def test_softmax_student_and_sigmoid_teacher_fail_when_built_naming_both(tmp_path):
    cfg, _, _ = _student_pair('fcos', tmp_path)
    cfg['teacher_ckpt'] = None
    cfg['bbox_head']['loss_cls'] = dict(type='CrossEntropyLoss', use_sigmoid=False)
    with pytest.raises(ValueError, match=r'student head is FCOSHead \(softmax over 4 channels '
                                         r'\(3 classes \+ background\)\), the teacher head '
                                         r'FCOSHead \(sigmoid, 3 classes\)'):
        MODELS.build(cfg)


def test_ssd_class_mismatch_fails_when_built_naming_the_counts():
    cfg = Config.fromfile(SSD_CFG).model.to_dict()
    teacher = Config.fromfile(SSD_CFG)
    teacher.model.bbox_head.num_classes = 4
    cfg.update(type='DistillationSingleStageDetector', teacher_config=teacher)
    with pytest.raises(ValueError, match=r'student head FixedSSDHead has num_classes=3, the '
                                         r'teacher head FixedSSDHead num_classes=4'):
        MODELS.build(cfg)


# ------------------------------------------------------------------- teacher loading
def test_missing_or_unreadable_teacher_checkpoint_names_the_path_and_the_key(tmp_path):
    base = dict(_centernet(4), type='DistillationSingleStageDetector',
                teacher_config=dict(model=_centernet(8)))
    with pytest.raises(TeacherLoadError, match=r"model.teacher_ckpt='nowhere/teacher.pth': "
                                               r"no such file.*--cfg-options "
                                               r"model.teacher_ckpt=PATH"):
        MODELS.build(dict(base, teacher_ckpt='nowhere/teacher.pth'))
    bad = tmp_path / 'teacher.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(TeacherLoadError, match=rf"model.teacher_ckpt='{bad}' .*cannot be loaded"):
        MODELS.build(dict(base, teacher_ckpt=str(bad)))
    # a checkpoint of another model: strict loading names the keys
    other = tmp_path / 'other.pth'
    save_checkpoint(MODELS.build(_fcos(4)).state_dict(), str(other))
    with pytest.raises(TeacherLoadError, match=r'(?s)cannot be loaded.*(unexpected|missing) key'):
        MODELS.build(dict(base, teacher_ckpt=str(other)))
    with pytest.raises(TeacherLoadError, match=r"model.teacher_config='nowhere/teacher.py': "
                                               r"no such file"):
        MODELS.build(dict(base, teacher_config='nowhere/teacher.py'))


@pytest.mark.slow  # ~30 s: a tools/train.py process
def test_train_tool_reports_a_missing_teacher_checkpoint_without_a_traceback(python, tmp_path):
    from conftest import run_tool
    res = run_tool([python, 'tools/train.py', DISTILL_CFG, '--work-dir', str(tmp_path),
                    '--cfg-options', 'model.teacher_ckpt=nowhere/teacher.pth'])
    assert res.returncode != 0
    assert 'error: ' in res.stderr
    assert "model.teacher_ckpt='nowhere/teacher.pth': no such file" in res.stderr
    assert 'Traceback' not in res.stderr
