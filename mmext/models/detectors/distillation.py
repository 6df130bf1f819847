"""Knowledge distillation for single-stage detectors (Hinton, Vinyals & Dean, arXiv:1503.02531).

A trained teacher detector, built from its own config and checkpoint, frozen and in eval mode,
runs on every training batch without gradients; the student's loss is its own detection loss
plus ``w * T^2 * KL`` between the softened classification outputs of both heads at the same
locations (:class:`~mmext.models.losses.SoftTargetDistillLoss`), optionally plus feature
imitation on the neck outputs through a 1x1 adapter (:class:`FeatureImitationLoss`).

MMDetection's own ``KnowledgeDistillationSingleStageDetector`` distils only GFL's box
distributions (LD) through a GFL-specific head; this one reads the classification outputs of
any dense head below, so any mmext/mmdet backbone and neck pair works:

============================  ======================  =========================================
head                          outputs distilled       form
============================  ======================  =========================================
RetinaNet (``AnchorHead``:    class scores of every   sigmoid (softmax if the head uses softmax,
RetinaHead,                   level and anchor        ``use_sigmoid=False``)
RetinaSepBNActHead ...)
CenterNet / CenterNetStacked  class heatmaps (every   sigmoid (the head outputs probabilities;
                              stage or the last,      they are mapped back to logits)
                              ``centernet_stages``)
YOLOv3 / GaussianYOLOV3Head   class logits and        sigmoid; the class term is weighted by the
                              objectness per anchor   teacher's objectness (YOLOv3 trains classes
                                                      only where an object is)
============================  ======================  =========================================

Head outputs must align (levels, anchors, classes, feature-map sizes): the teacher sees the
student's batch (re-normalised with its own mean/std), so the two may differ in backbone and
input resolution handling only where the heads still produce the same shapes; otherwise
``ValueError`` names the outputs whose shapes differ.

Saving: the teacher is kept outside the module tree (a plain attribute, as mmdet does), so it is
in neither ``state_dict`` nor the optimizer; the feature adapters are dropped from the
``state_dict`` too. A checkpoint therefore holds exactly the plain student and loads (strictly)
into the student's own config; ``tools/test.py STUDENT_CONFIG CKPT`` evaluates it. Resuming a
distillation run restarts the adapters from their initialisation (the optimizer state is kept).
"""
import os.path as osp
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from mmdet.models.dense_heads import AnchorHead, CenterNetHead, YOLOV3Head
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


def _levels_last(x: Tensor, num_priors: int) -> Tensor:
    """(N, A * K, H, W) -> (N, H, W, A, K): priors and their K values in the last two dims."""
    n, ak, h, w = x.shape
    return x.view(n, num_priors, ak // num_priors, h, w).permute(0, 3, 4, 1, 2)


def classification_outputs(head: nn.Module, outs: tuple,
                           centernet_stages: str = 'all') -> List[HeadOutput]:
    """The classification outputs of a dense head's forward, as class-last logits.

    Args:
        head (nn.Module): the head that produced ``outs``.
        outs (tuple): ``head(feats)``.
        centernet_stages (str): for :class:`CenterNetStackedHead`, distil ``'all'`` stages
            (every stage is supervised, so every stage gets the teacher's matching stage) or
            only the ``'last'`` one (the stage used for prediction).

    Returns:
        list: ``(name, logits (N, ..., C), form, weight or None)`` per output tensor.
    """
    if isinstance(head, YOLOV3Head):
        # (cls after objectness; GaussianYOLOV3Head has 8 box values before it, YOLOv3 4)
        obj_idx = head.num_attrib - head.num_classes - 1
        items = []
        for lvl, pred in enumerate(outs[0]):
            p = _levels_last(pred, head.num_base_priors)
            obj = p[..., obj_idx:obj_idx + 1]
            items.append((f'obj_l{lvl}', obj, 'sigmoid', None))
            items.append((f'cls_l{lvl}', p[..., obj_idx + 1:], 'sigmoid',
                          torch.sigmoid(obj[..., 0]).detach()))
        return items
    if isinstance(head, CenterNetHead):
        heatmaps = outs[0]
        if getattr(head, 'num_stages', 1) > 1 and centernet_stages == 'last':
            heatmaps = heatmaps[-1:]
        # CenterNet's heads output sigmoid probabilities: back to logits for the temperature
        return [(f'heatmap_{i}', torch.logit(hm.float(), eps=1e-6).permute(0, 2, 3, 1),
                 'sigmoid', None) for i, hm in enumerate(heatmaps)]
    if isinstance(head, AnchorHead):
        form = 'sigmoid' if head.use_sigmoid_cls else 'softmax'
        return [(f'cls_l{lvl}', _levels_last(s, head.num_base_priors), form, None)
                for lvl, s in enumerate(outs[0])]
    raise TypeError(f'classification_outputs: head {type(head).__name__} is not supported; '
                    f'supported: AnchorHead subclasses (RetinaNet...), CenterNetHead '
                    f'(CenterNetStackedHead), YOLOV3Head (GaussianYOLOV3Head)')


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
    """Raise ``ValueError`` when the heads' anchors differ (same index, different box).

    Anchor ``a`` of a level must be the same box in both heads, otherwise the soft targets of
    one anchor would teach another (e.g. mmdet RetinaNet's octave_base_scale 4 vs SpineNet's 3).
    """
    s_gen = getattr(student_head, 'prior_generator', None)
    t_gen = getattr(teacher_head, 'prior_generator', None)
    if s_gen is None or t_gen is None or not hasattr(s_gen, 'base_anchors'):
        return
    s_anchors, t_anchors = s_gen.base_anchors, t_gen.base_anchors
    diff = [f'level {i}: student {s.tolist()} vs teacher {t.tolist()}'
            for i, (s, t) in enumerate(zip(s_anchors, t_anchors))
            if s.shape != t.shape or not torch.allclose(s, t)]
    if len(s_anchors) != len(t_anchors) or list(s_gen.strides) != list(t_gen.strides):
        diff.insert(0, f'strides: student {list(s_gen.strides)} vs teacher {list(t_gen.strides)}')
    if diff:
        raise ValueError('Distillation: teacher and student anchors differ (set the student\'s '
                         'anchor_generator to the teacher\'s): ' + '; '.join(diff))


def _resolve(path: Union[str, Path]) -> str:
    """A config/checkpoint path as given, else relative to the mmext checkout."""
    path = str(path)
    if osp.exists(path) or osp.isabs(path):
        return path
    alt = osp.join(_REPO_ROOT, path)
    return alt if osp.exists(alt) else path


@MODELS.register_module()
class DistillationSingleStageDetector(SingleStageDetector):
    """A single-stage student detector trained with a frozen teacher's soft targets.

    Args:
        backbone, neck, bbox_head, train_cfg, test_cfg, data_preprocessor, init_cfg: the
            student, exactly as in :class:`mmdet.models.SingleStageDetector`.
        teacher_config (str | dict): the teacher's config file (or its Config); its ``model``
            is built. Paths are tried as given, then relative to the mmext checkout.
        teacher_ckpt (str, optional): the teacher's checkpoint, loaded strictly. None keeps a
            randomly initialised teacher (tests only).
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
        check_priors(self.bbox_head, self.teacher.bbox_head)
        # the adapters exist for training only: keep the checkpoint a plain student
        self._register_state_dict_hook(_drop_adapter_keys)

    # ----------------------------------------------------------------- teacher
    @staticmethod
    def _build_teacher(teacher_config, teacher_ckpt) -> nn.Module:
        if isinstance(teacher_config, (str, Path)):
            teacher_config = Config.fromfile(_resolve(teacher_config))
        elif isinstance(teacher_config, dict) and not isinstance(teacher_config, Config):
            teacher_config = Config(dict(teacher_config))
        cfg = adapt_cfg_to_device(teacher_config)  # SyncBN -> BN without CUDA, as train.py
        teacher = MODELS.build(cfg['model'])
        if teacher_ckpt is not None:
            load_checkpoint(teacher, _resolve(teacher_ckpt), map_location='cpu', strict=True,
                            logger='current')
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
        student = classification_outputs(self.bbox_head, outs, self.centernet_stages)
        teacher = classification_outputs(self.teacher.bbox_head, t_outs, self.centernet_stages)
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
