"""Knowledge distillation for single-stage detectors (Hinton, Vinyals & Dean, arXiv:1503.02531).

A trained teacher detector, built from its own config and checkpoint, frozen and in eval mode,
runs on every training batch without gradients; the student's loss is its own detection loss
plus ``w * T^2 * KL`` between the softened classification outputs of both heads at the same
locations (:class:`~mmext.models.losses.SoftTargetDistillLoss`), optionally plus feature
imitation on the neck outputs through a 1x1 adapter (:class:`FeatureImitationLoss`).

MMDetection's own ``KnowledgeDistillationSingleStageDetector`` distils only GFL's box
distributions (LD) through a GFL-specific head; this one reads the classification outputs of
any mmdet dense head whose class scores are per location, so any backbone / neck / head works.
One adapter (:func:`cls_layout`, :func:`classification_outputs`) reads them from the head's
forward output and attributes: the first output is a list over levels of
``(N, A_l * K, H, W)`` maps, prior-major, with ``A_l`` priors per location at level ``l`` (the
prior generator's ``num_base_priors``, a list for SSD) and ``K = cls_out_channels`` values per
prior; the form is the head's (``use_sigmoid_cls``: one binary distribution per class, else a
softmax over the classes and SSD's background channel). Tested on RetinaNet, SSD / SSDLite,
FCOS, ATSS, GFL, FreeAnchor, FSAF, PAA, TOOD, VFNet, RTMDet, AutoAssign, FoveaBox, RepPoints,
YOLOX, RPN, CenterNet / CenterNetStacked, YOLOv3 / Gaussian YOLOv3. What the adapter adapts:

* heads whose scores are probabilities (CenterNet's heatmaps, a ``loss_cls`` with
  ``activated=True`` such as TOOD's) are mapped back to logits, so that T applies;
* YOLOv3's maps pack box, objectness and classes per prior: the objectness is distilled too
  (``loss_kd_obj``) and the class term is weighted by the teacher's objectness (YOLOv3 trains
  classes only where an object is);
* :class:`CenterNetStackedHead`: every stage or the last (``centernet_stages``).

Checked when the model is built (``ValueError`` naming the heads): the same classes
(``num_classes``), form (sigmoid / softmax), objectness, levels and priors per level, strides,
and the same anchors (anchor ``a`` of a level must be the same box in both heads). The
feature-map sizes depend on the input and are checked at the step (``ValueError`` naming the
outputs whose shapes differ): the teacher sees the student's batch (re-normalised with its own
mean/std). A head without per-location class scores is a ``TypeError`` at build time; a missing
or unreadable teacher config / checkpoint a :class:`TeacherLoadError` naming the path and the
config key (tools/train.py prints it without a traceback).

Saving: the teacher is kept outside the module tree (a plain attribute, as mmdet does), so it is
in neither ``state_dict`` nor the optimizer; the feature adapters are dropped from the
``state_dict`` too. A checkpoint therefore holds exactly the plain student and loads (strictly)
into the student's own config; ``tools/test.py STUDENT_CONFIG CKPT`` evaluates it. Resuming a
distillation run restarts the adapters from their initialisation (the optimizer state is kept).
"""
import os.path as osp
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.detectors import SingleStageDetector
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from torch import Tensor, nn

from ...registry import MODELS
from ...utils.launch import adapt_cfg_to_device

HeadOutput = Tuple[str, Tensor, str, Optional[Tensor]]  # name, (..., C) logits, form, weight
CENTERNET_STAGES = ('all', 'last')
ADAPTER_PREFIX = 'feature_loss.'
_REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


class TeacherLoadError(RuntimeError):
    """The teacher's config or checkpoint is missing or cannot be loaded (names the config
    key); tools/train.py and tools/test.py print it without a traceback."""


@dataclass(frozen=True)
class ClsLayout:
    """Where a dense head's forward output keeps its per-location classification.

    ``head(feats)[0]`` is a list over levels (CenterNetStackedHead: over stages) of
    ``(N, A_l * K, H, W)`` maps, prior-major (channel ``a * K + k``), as every mmdet dense head
    lays them out for its own loss (``permute(0, 2, 3, 1).reshape(-1, K)``). Of the ``K``
    values of a prior, ``channels`` classification channels start at ``cls_start``.

    Attributes:
        head (str): the head's type name (for messages).
        num_classes (int): the dataset's classes.
        form (str): ``'sigmoid'`` (one binary distribution per class) or ``'softmax'`` (one
            distribution over ``channels`` = classes + background, SSD).
        channels (int): classification channels per prior.
        values_per_prior (int): ``K``.
        cls_start (int): first classification channel of a prior (YOLOv3: after box and
            objectness).
        obj_index (int, optional): the objectness channel of a prior (YOLOv3), else None.
        activated (bool): the head outputs probabilities, not logits (CenterNet's heatmaps,
            heads whose classification loss has ``activated=True`` such as TOOD).
        priors (tuple, optional): priors per location of each level (anchors; 1 for
            anchor-free heads), None if the head does not say how many levels it has.
        default_priors (int): priors per location when ``priors`` is None.
        group (str): the name of the loss (``loss_kd_<group>``): ``heatmap`` or ``cls``.
        keep_last (bool): distil only the last map of the list (CenterNetStackedHead's last
            stage, ``centernet_stages='last'``).
    """
    head: str
    num_classes: int
    form: str
    channels: int
    values_per_prior: int
    cls_start: int = 0
    obj_index: Optional[int] = None
    activated: bool = False
    priors: Optional[Tuple[int, ...]] = None
    default_priors: int = 1
    group: str = 'cls'
    keep_last: bool = False

    def priors_at(self, level: int) -> int:
        return self.priors[level] if self.priors is not None else self.default_priors

    def describe(self) -> str:
        kind = (f'softmax over {self.channels} channels ({self.num_classes} classes + '
                f'background)' if self.form == 'softmax' else
                f'sigmoid, {self.num_classes} classes')
        return f'{self.head} ({kind})'


SUPPORTED_HEADS = ('mmdet dense heads with per-location class scores: AnchorHead / '
                   'AnchorFreeHead subclasses (RetinaNet, SSD, FCOS, ATSS, GFL, FreeAnchor, '
                   'VFNet, TOOD ...), YOLOX / RTMDet, CenterNetHead (CenterNetStackedHead), '
                   'YOLOV3Head (GaussianYOLOV3Head)')


def cls_layout(head: nn.Module, centernet_stages: str = 'all') -> ClsLayout:
    """Read a dense head's classification layout from its attributes.

    One reading for every head: ``cls_out_channels`` and ``use_sigmoid_cls`` (what mmdet's
    dense heads define, SSD's background channel included), priors per level from the prior
    generator (SSD: a list), YOLOv3's packed ``num_attrib`` maps, CenterNet's per-class
    heatmaps (sigmoid probabilities, ``loss_center_heatmap``).

    Raises:
        TypeError: the head has no per-location classification output.
    """
    name = type(head).__name__
    num_classes = getattr(head, 'num_classes', None)
    if not isinstance(head, BaseDenseHead) or not isinstance(num_classes, int):
        raise TypeError(f'Distillation: head {name} is not supported (no per-location class '
                        f'scores); supported: {SUPPORTED_HEADS}')
    loss_cls = getattr(head, 'loss_cls', None)
    common = {}
    if hasattr(head, 'num_attrib'):
        # YOLOv3 family: per prior the box (4, Gaussian YOLOv3: 8), objectness, classes
        obj = head.num_attrib - num_classes - 1
        common = dict(form='sigmoid', channels=num_classes, values_per_prior=head.num_attrib,
                      cls_start=obj + 1, obj_index=obj)
    elif hasattr(head, 'cls_out_channels'):
        sigmoid = getattr(head, 'use_sigmoid_cls', head.cls_out_channels == num_classes)
        common = dict(form='sigmoid' if sigmoid else 'softmax', channels=head.cls_out_channels,
                      values_per_prior=head.cls_out_channels)
    elif hasattr(head, 'loss_center_heatmap'):
        # CenterNet: one heatmap per class, output after its sigmoid (GaussianFocalLoss takes
        # probabilities)
        loss_cls = None
        common = dict(form='sigmoid', channels=num_classes, values_per_prior=num_classes,
                      activated=True, group='heatmap')
    else:
        raise TypeError(f'Distillation: head {name} is not supported (it defines neither '
                        f'cls_out_channels, num_attrib nor a class heatmap); supported: '
                        f'{SUPPORTED_HEADS}')
    if loss_cls is not None and getattr(loss_cls, 'activated', False):
        common['activated'] = True  # e.g. TOOD: sqrt(sigmoid(cls) * sigmoid(prob))
    gen = getattr(head, 'prior_generator', None)
    priors = getattr(gen, 'num_base_priors', None)
    num_stages = getattr(head, 'num_stages', None)
    keep_last = False
    if isinstance(priors, (list, tuple)):
        priors = tuple(int(a) for a in priors)
    elif common.get('group') == 'heatmap' and num_stages is not None:
        keep_last = centernet_stages == 'last' and num_stages > 1
        priors = (1, ) * (1 if keep_last else num_stages)
    else:
        priors = None
    default = getattr(head, 'num_base_priors', 1)
    return ClsLayout(head=name, num_classes=num_classes, priors=priors, keep_last=keep_last,
                     default_priors=default if isinstance(default, int) else 1, **common)


def classification_outputs(head: nn.Module, outs: tuple, centernet_stages: str = 'all',
                           layout: Optional[ClsLayout] = None) -> List[HeadOutput]:
    """The classification outputs of a dense head's forward, as class-last logits.

    Args:
        head (nn.Module): the head that produced ``outs``.
        outs (tuple): ``head(feats)``.
        centernet_stages (str): for :class:`CenterNetStackedHead`, distil ``'all'`` stages
            (every stage is supervised, so every stage gets the teacher's matching stage) or
            only the ``'last'`` one (the stage used for prediction).
        layout (ClsLayout, optional): ``cls_layout(head, centernet_stages)`` if not given.

    Returns:
        list: ``(name, logits (N, H, W, A, C), form, weight or None)`` per level; YOLOv3 heads
        add ``obj_l<i>`` (objectness, ``C = 1``) before each level's classes, whose weight is
        then the objectness probability (YOLOv3 trains classes only where an object is).
    """
    layout = layout or cls_layout(head, centernet_stages)
    maps = list(outs[0])
    if layout.keep_last:
        maps = maps[-1:]
    if layout.priors is not None and len(maps) != len(layout.priors):
        what = 'stages' if layout.group == 'heatmap' else 'levels of its prior generator'
        raise ValueError(f'Distillation: {layout.head} gave {len(maps)} classification maps, '
                         f'expected {len(layout.priors)} ({what})')
    items = []
    for lvl, m in enumerate(maps):
        n, c, h, w = m.shape
        a, k = layout.priors_at(lvl), layout.values_per_prior
        if c != a * k:
            raise ValueError(f'Distillation: {layout.head} level {lvl}: the classification map '
                             f'has {c} channels, expected {a} priors x {k}')
        p = m.view(n, a, k, h, w).permute(0, 3, 4, 1, 2)  # (N, H, W, A, K)
        cls = p[..., layout.cls_start:layout.cls_start + layout.channels]
        if layout.activated:
            # probabilities back to logits, so that the temperature applies
            cls = torch.logit(cls.float(), eps=1e-6)
        weight = None
        if layout.obj_index is not None:
            obj = p[..., layout.obj_index:layout.obj_index + 1]
            items.append((f'obj_l{lvl}', obj, 'sigmoid', None))
            weight = torch.sigmoid(obj[..., 0]).detach()
        name = f'heatmap_{lvl}' if layout.group == 'heatmap' else f'cls_l{lvl}'
        items.append((name, cls, layout.form, weight))
    return items


def check_compatible(student: ClsLayout, teacher: ClsLayout) -> None:
    """Raise ``ValueError`` when the two heads' classification outputs cannot be matched:
    different classes, forms (sigmoid / softmax), objectness, levels or priors per level."""
    s, t = student, teacher
    errors = []
    if s.num_classes != t.num_classes:
        errors.append(f'the student head {s.head} has num_classes={s.num_classes}, the '
                      f'teacher head {t.head} num_classes={t.num_classes} (the soft targets '
                      f'need the same classes in the same order)')
    elif s.form != t.form or s.channels != t.channels:
        errors.append(f'the student head is {s.describe()}, the teacher head '
                      f'{t.describe()}: both must use the same form')
    if (s.obj_index is None) != (t.obj_index is None):
        errors.append(f'only the {"student" if t.obj_index is None else "teacher"} head has '
                      f'an objectness output ({s.head} vs {t.head})')
    if s.priors is not None and t.priors is not None and s.priors != t.priors:
        what = 'stages' if s.group == 'heatmap' else 'levels'
        errors.append(f'priors per location of each of the {what}: student {s.head} '
                      f'{list(s.priors)} vs teacher {t.head} {list(t.priors)}')
    if errors:
        raise ValueError('Distillation: teacher and student heads do not match: '
                         + '; '.join(errors))


def check_aligned(student: List[HeadOutput], teacher: List[HeadOutput]) -> None:
    """Raise ``ValueError`` naming the outputs whose teacher and student shapes differ."""
    s_shapes = [(name, tuple(t.shape)) for name, t, *_ in student]
    t_shapes = [(name, tuple(t.shape)) for name, t, *_ in teacher]
    if len(s_shapes) != len(t_shapes):
        raise ValueError(f'Distillation: the student head gives {len(s_shapes)} outputs '
                         f'{s_shapes}, the teacher head {len(t_shapes)} {t_shapes}: levels or '
                         f'stages differ')
    diff = [f'{sn}: student {ss} vs teacher {ts}'
            for (sn, ss), (_, ts) in zip(s_shapes, t_shapes) if ss != ts]
    if diff:
        raise ValueError('Distillation: teacher and student head outputs differ in shape '
                         '(N, H, W, [anchors,] classes): ' + '; '.join(diff))


def check_priors(student_head: nn.Module, teacher_head: nn.Module) -> None:
    """Raise ``ValueError`` when the heads' priors differ (strides, or same index, different box).

    Anchor ``a`` of a level must be the same box in both heads, otherwise the soft targets of
    one anchor would teach another (e.g. mmdet RetinaNet's octave_base_scale 4 vs SpineNet's 3).
    Point generators (FCOS ...) must agree on strides and offset. An anchor head and a point
    head with one prior per location and the same strides may be paired (the same feature
    location is compared).
    """
    s_gen = getattr(student_head, 'prior_generator', None)
    t_gen = getattr(teacher_head, 'prior_generator', None)
    if s_gen is None or t_gen is None:
        return
    diff = []
    s_strides = [tuple(x) for x in getattr(s_gen, 'strides', [])]
    t_strides = [tuple(x) for x in getattr(t_gen, 'strides', [])]
    if s_strides != t_strides:
        diff.append(f'strides: student {s_strides} vs teacher {t_strides}')
    anchors = [hasattr(g, 'base_anchors') for g in (s_gen, t_gen)]
    if all(anchors):
        diff += [f'level {i}: student {s.tolist()} vs teacher {t.tolist()}'
                 for i, (s, t) in enumerate(zip(s_gen.base_anchors, t_gen.base_anchors))
                 if s.shape != t.shape or not torch.allclose(s, t)]
    elif not any(anchors) and getattr(s_gen, 'offset', None) != getattr(t_gen, 'offset', None):
        diff.append(f'point offset: student {getattr(s_gen, "offset", None)} vs teacher '
                    f'{getattr(t_gen, "offset", None)}')
    if diff:
        kind = 'anchor' if all(anchors) else 'prior'
        raise ValueError(f'Distillation: teacher and student {kind}s differ (set the student\'s '
                         f'{kind}_generator to the teacher\'s): ' + '; '.join(diff))


def _resolve(path: Union[str, Path]) -> str:
    """A config/checkpoint path as given, else relative to the mmext checkout."""
    path = str(path)
    if osp.exists(path) or osp.isabs(path):
        return path
    alt = osp.join(_REPO_ROOT, path)
    return alt if osp.exists(alt) else path


def _not_found(key: str, given, hint: str) -> TeacherLoadError:
    given = str(given)
    where = repr(given) if osp.isabs(given) else \
        f'{given!r} (nor {osp.join(_REPO_ROOT, given)!r})'
    return TeacherLoadError(f'DistillationSingleStageDetector: model.{key}={given!r}: no such '
                            f'file: {where}. {hint}')


@MODELS.register_module()
class DistillationSingleStageDetector(SingleStageDetector):
    """A single-stage student detector trained with a frozen teacher's soft targets.

    Args:
        backbone, neck, bbox_head, train_cfg, test_cfg, data_preprocessor, init_cfg: the
            student, exactly as in :class:`mmdet.models.SingleStageDetector`.
        teacher_config (str | dict): the teacher's config file (or its Config); its ``model``
            is built. Paths are tried as given, then relative to the mmext checkout.
        teacher_ckpt (str, optional): the teacher's checkpoint, loaded strictly (a missing or
            unloadable file: :class:`TeacherLoadError`). None keeps a randomly initialised
            teacher (tests only).
        distill_loss (dict, optional): the soft-target term,
            ``dict(type='SoftTargetDistillLoss', temperature=T, loss_weight=w)``; None: off.
        feature_loss (dict, optional): feature imitation on the neck outputs,
            ``dict(type='FeatureImitationLoss', student_channels=..., teacher_channels=...,
            num_levels=..., loss_weight=...)``; None (default): off.
        centernet_stages (str): ``'all'`` (default) or ``'last'``; which stages of a
            :class:`CenterNetStackedHead` are distilled (see :func:`classification_outputs`).
        renormalize_teacher (bool): map the student's normalised batch to the teacher's
            mean/std/channel order (default True). The teacher sees the student's resized,
            padded images.
    """

    def __init__(self,
                 backbone: dict,
                 bbox_head: dict,
                 teacher_config: Union[str, Path, dict],
                 teacher_ckpt: Optional[str] = None,
                 distill_loss: Optional[dict] = dict(type='SoftTargetDistillLoss',
                                                     temperature=2.0, loss_weight=1.0),
                 feature_loss: Optional[dict] = None,
                 centernet_stages: str = 'all',
                 renormalize_teacher: bool = True,
                 neck: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if centernet_stages not in CENTERNET_STAGES:
            raise ValueError(f'DistillationSingleStageDetector: centernet_stages='
                             f'{centernet_stages!r}; allowed: {CENTERNET_STAGES}')
        if distill_loss is None and feature_loss is None:
            raise ValueError('DistillationSingleStageDetector: distill_loss and feature_loss '
                             'are both None; switch on at least one term')
        self.centernet_stages = centernet_stages
        self.renormalize_teacher = renormalize_teacher
        self.distill_loss = MODELS.build(distill_loss) if distill_loss else None
        self.feature_loss = MODELS.build(feature_loss) if feature_loss else None
        self.teacher = self._build_teacher(teacher_config, teacher_ckpt)
        # incompatible heads fail here, when the model is built, not at the first step
        self.cls_layouts = None
        if self.distill_loss is not None:
            self.cls_layouts = (cls_layout(self.bbox_head, centernet_stages),
                                cls_layout(self.teacher.bbox_head, centernet_stages))
            check_compatible(*self.cls_layouts)
            check_priors(self.bbox_head, self.teacher.bbox_head)
        # the adapters exist for training only: keep the checkpoint a plain student
        self._register_state_dict_hook(_drop_adapter_keys)

    # ----------------------------------------------------------------- teacher
    @staticmethod
    def _build_teacher(teacher_config, teacher_ckpt) -> nn.Module:
        cfg_name = 'a dict'
        if isinstance(teacher_config, (str, Path)):
            cfg_name = repr(str(teacher_config))
            path = _resolve(teacher_config)
            if not osp.isfile(path):
                raise _not_found('teacher_config', teacher_config,
                                 'Point it at the teacher\'s config file.')
            teacher_config = Config.fromfile(path)
        elif isinstance(teacher_config, dict) and not isinstance(teacher_config, Config):
            teacher_config = Config(dict(teacher_config))
        cfg = adapt_cfg_to_device(teacher_config)  # SyncBN -> BN without CUDA, as train.py
        teacher = MODELS.build(cfg['model'])
        if teacher_ckpt is not None:
            path = _resolve(teacher_ckpt)
            if '://' not in path and not osp.isfile(path):
                raise _not_found(
                    'teacher_ckpt', teacher_ckpt,
                    f'Train the teacher first (python tools/train.py <the config of '
                    f'model.teacher_config={cfg_name}>) and point model.teacher_ckpt at its '
                    f'checkpoint: --cfg-options model.teacher_ckpt=PATH '
                    f'(model.teacher_ckpt=None: a random teacher, for tests only).')
            try:
                load_checkpoint(teacher, path, map_location='cpu', strict=True,
                                logger='current')
            except Exception as e:  # unreadable file, foreign keys, refused pickle ...
                raise TeacherLoadError(
                    f'DistillationSingleStageDetector: model.teacher_ckpt={str(teacher_ckpt)!r} '
                    f'({path}) cannot be loaded into the teacher built from '
                    f'model.teacher_config={cfg_name}: {type(e).__name__}: {e}') from e
        else:
            teacher.init_weights()
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def __setattr__(self, name: str, value: Any) -> None:
        # as mmdet's KD detector: a plain attribute keeps the teacher out of parameters(),
        # state_dict(), the optimizer, DDP and init_weights()
        if name == 'teacher':
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def train(self, mode: bool = True) -> 'DistillationSingleStageDetector':
        super().train(mode)
        self.teacher.eval()  # BN statistics and dropout of the teacher stay frozen
        return self

    def to(self, *args, **kwargs) -> nn.Module:
        self.teacher.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def cuda(self, device=None) -> nn.Module:
        self.teacher.cuda(device)
        return super().cuda(device)

    def cpu(self) -> nn.Module:
        self.teacher.cpu()
        return super().cpu()

    def teacher_inputs(self, batch_inputs: Tensor) -> Tensor:
        """The student's normalised batch in the teacher's normalisation."""
        s_pre, t_pre = self.data_preprocessor, self.teacher.data_preprocessor
        if not (self.renormalize_teacher and getattr(s_pre, '_enable_normalize', False)
                and getattr(t_pre, '_enable_normalize', False)):
            return batch_inputs
        raw = batch_inputs * s_pre.std + s_pre.mean
        if getattr(s_pre, '_channel_conversion', False) != getattr(t_pre, '_channel_conversion',
                                                                   False):
            raw = raw.flip(1)
        return (raw - t_pre.mean) / t_pre.std

    # -------------------------------------------------------------------- loss
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Student detection losses + ``loss_kd_*`` (soft targets) + ``loss_feat_imitation``."""
        feats = self.extract_feat(batch_inputs)
        outs = self.bbox_head(feats)
        gt_instances, gt_ignore, img_metas = unpack_gt_instances(batch_data_samples)
        losses = self.bbox_head.loss_by_feat(*outs, gt_instances, img_metas, gt_ignore)

        with torch.no_grad():
            t_feats = self.teacher.extract_feat(self.teacher_inputs(batch_inputs))
            t_outs = self.teacher.bbox_head(t_feats) if self.distill_loss else None

        if self.distill_loss is not None:
            losses.update(self.soft_target_losses(outs, t_outs))
        if self.feature_loss is not None:
            losses['loss_feat_imitation'] = self.feature_loss(feats, t_feats)
        return losses

    def soft_target_losses(self, outs: tuple, t_outs: tuple) -> Dict[str, Tensor]:
        """``loss_kd_<group>`` per output group (cls / obj / heatmap), levels concatenated."""
        s_layout, t_layout = self.cls_layouts
        student = classification_outputs(self.bbox_head, outs, layout=s_layout)
        teacher = classification_outputs(self.teacher.bbox_head, t_outs, layout=t_layout)
        check_aligned(student, teacher)
        groups: Dict[str, List[Tensor]] = {}
        counts: Dict[str, float] = {}
        for (name, s, form, _), (_, t, _, t_weight) in zip(student, teacher):
            group = name.split('_')[0]
            # (YOLOv3: the teacher's objectness weights the class term)
            kl_sum = self.distill_loss(s, t, form=form, weight=t_weight, avg_factor=1)
            groups.setdefault(group, []).append(kl_sum)
            counts[group] = counts.get(group, 0) + s[..., 0].numel()
        return {f'loss_kd_{g}': sum(v) / counts[g] for g, v in groups.items()}


def _drop_adapter_keys(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix + ADAPTER_PREFIX)]:
        del state_dict[key]
    return state_dict
