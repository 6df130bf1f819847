"""Soft-target distillation losses (Hinton, Vinyals & Dean, arXiv:1503.02531).

The student matches the teacher's outputs softened at a temperature T. Sec. 2 of the paper: the
soft-target gradients scale as 1/T^2, so the soft term is multiplied by T^2 to keep its weight
relative to the hard-label loss unchanged when T changes. Two forms:

* ``softmax`` (the paper's form; classifiers / softmax detection heads): per location
  ``T^2 * KL(softmax(t / T) || softmax(s / T))`` over the class dimension;
* ``sigmoid`` (dense detectors with one sigmoid per class: RetinaNet, CenterNet heatmaps,
  YOLOv3 classes and objectness): each class is its own two-way distribution, so per location
  ``T^2 * sum_c KL(Bernoulli(sigmoid(t_c / T)) || Bernoulli(sigmoid(s_c / T)))``.

Both are summed over the class (last) dimension and averaged over locations (or divided by
``avg_factor``), then multiplied by ``loss_weight`` (the paper's relative weight w).
:class:`FeatureImitationLoss` adds the optional feature term: MSE between the teacher's neck
features and the student's, mapped to the teacher's width by a 1x1 adapter conv (FitNets,
Romero et al., arXiv:1412.6550; the adapter only exists during training).
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS

FORMS = ('softmax', 'sigmoid')


def soft_target_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0,
                   form: str = 'softmax') -> Tensor:
    """Per-location ``T^2 * KL(teacher || student)`` of the softened outputs, classes last.

    Args:
        student_logits (Tensor): (..., C) logits of the student.
        teacher_logits (Tensor): (..., C) logits of the teacher, same shape.
        temperature (float): T > 0.
        form (str): ``'softmax'`` (one distribution over the C classes) or ``'sigmoid'`` (C
            independent binary distributions, their KLs summed).

    Returns:
        Tensor: (...) the loss per location (summed over the class dimension).
    """
    if form not in FORMS:
        raise ValueError(f'soft_target_kl: form={form!r}; allowed: {FORMS}')
    if not temperature > 0:
        raise ValueError(f'soft_target_kl: temperature={temperature!r} must be > 0')
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f'soft_target_kl: student logits {tuple(student_logits.shape)} and '
                         f'teacher logits {tuple(teacher_logits.shape)} differ in shape')
    s = student_logits.float() / temperature
    t = teacher_logits.float() / temperature
    if form == 'softmax':
        log_p_t, log_p_s = F.log_softmax(t, dim=-1), F.log_softmax(s, dim=-1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    else:
        # log sigmoid(x) and log(1 - sigmoid(x)) = log sigmoid(-x), stable for large |x|
        p_t = torch.sigmoid(t)
        kl = (p_t * (F.logsigmoid(t) - F.logsigmoid(s)) +
              (1 - p_t) * (F.logsigmoid(-t) - F.logsigmoid(-s))).sum(-1)
    return kl * temperature**2


@MODELS.register_module()
class SoftTargetDistillLoss(nn.Module):
    """``loss_weight * T^2 * KL`` of softened outputs, averaged over locations.

    Args:
        temperature (float): T (> 0). The paper uses 1-20; 2-4 are common for detectors.
        loss_weight (float): w, the weight of the soft term against the detection loss.
        form (str): ``'auto'`` (default: the detector picks the form from the head, softmax
            for softmax heads, sigmoid otherwise), ``'softmax'`` or ``'sigmoid'`` (forced).
    """

    def __init__(self, temperature: float = 1.0, loss_weight: float = 1.0,
                 form: str = 'auto') -> None:
        super().__init__()
        if form not in FORMS + ('auto', ):
            raise ValueError(f'SoftTargetDistillLoss: form={form!r}; allowed: auto, softmax, '
                             f'sigmoid')
        if not temperature > 0:
            raise ValueError(f'SoftTargetDistillLoss: temperature={temperature!r} must be > 0')
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.form = form

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                form: Optional[str] = None, weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Loss for (..., C) logits.

        Args:
            student_logits (Tensor): (..., C).
            teacher_logits (Tensor): (..., C), no gradient needed.
            form (str, optional): the head's form, used when ``self.form == 'auto'``
                (default then: softmax).
            weight (Tensor, optional): (...) per-location weights.
            avg_factor (float, optional): divisor instead of the number of locations.
        """
        if self.form != 'auto':
            form = self.form
        kl = soft_target_kl(student_logits, teacher_logits, self.temperature, form or 'softmax')
        if weight is not None:
            kl = kl * weight
        denom = kl.numel() if avg_factor is None else avg_factor
        return self.loss_weight * kl.sum() / max(denom, 1)


@MODELS.register_module()
class FeatureImitationLoss(nn.Module):
    """MSE between adapted student features and teacher features, level by level.

    Args:
        student_channels (int | Sequence[int]): channels of the student's neck outputs (one
            int: every level; a list: one per level, one adapter each).
        teacher_channels (int | Sequence[int]): channels of the teacher's neck outputs.
        num_levels (int): levels compared (the first ``num_levels`` of both necks) when the
            channels are given as ints; one adapter is then shared across levels, as FPN
            levels share their convs.
        loss_weight (float): weight of the term.
    """

    def __init__(self, student_channels: Union[int, Sequence[int]],
                 teacher_channels: Union[int, Sequence[int]], num_levels: int = 1,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        s_ch = [student_channels] if isinstance(student_channels, int) else list(student_channels)
        t_ch = [teacher_channels] if isinstance(teacher_channels, int) else list(teacher_channels)
        if len(s_ch) != len(t_ch):
            raise ValueError(f'FeatureImitationLoss: student_channels={s_ch} and '
                             f'teacher_channels={t_ch} need the same number of levels')
        self.shared = len(s_ch) == 1
        self.num_levels = num_levels if self.shared else len(s_ch)
        self.adapters = nn.ModuleList(nn.Conv2d(s, t, 1) for s, t in zip(s_ch, t_ch))
        self.loss_weight = float(loss_weight)

    def forward(self, student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
        """Mean over levels of the MSE between ``adapter(student)`` and ``teacher``."""
        n = self.num_levels
        if len(student_feats) < n or len(teacher_feats) < n:
            raise ValueError(f'FeatureImitationLoss: needs {n} levels, student neck gives '
                             f'{len(student_feats)}, teacher neck {len(teacher_feats)}')
        total = 0.
        for i in range(n):
            adapted = self.adapters[0 if self.shared else i](student_feats[i])
            if adapted.shape != teacher_feats[i].shape:
                raise ValueError(
                    f'FeatureImitationLoss: level {i}: adapted student feature '
                    f'{tuple(adapted.shape)} vs teacher feature {tuple(teacher_feats[i].shape)}')
            total = total + F.mse_loss(adapted, teacher_feats[i])
        return self.loss_weight * total / n
