"""Behaviour every mmext backbone shares with mmdet's: ``frozen_stages``, ``norm_eval`` and the
checks of ``out_indices`` / ``frozen_stages``."""
from typing import List

import torch.nn as nn
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm


class FreezableBackbone(BaseModule):
    """Base class: a subclass says *which* modules its ``frozen_stages`` freezes
    (:meth:`frozen_modules`); freezing (eval mode, no gradients) and ``norm_eval`` (BN kept in
    eval mode while training) work as in mmdet's ResNet. Subclasses set ``self.norm_eval`` and
    call ``self._freeze_stages()`` at the end of ``__init__``."""

    norm_eval = False

    def frozen_modules(self) -> List[nn.Module]:
        return []

    def _freeze_stages(self):
        for m in self.frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


def check_out_indices(name: str, out_indices, num_outputs: int, meaning: str) -> tuple:
    """``out_indices`` as a tuple, or a ValueError naming the allowed ``0..num_outputs-1``
    (``meaning`` says what they are, e.g. ``'strides 4, 8, 16, 32'``)."""
    out_indices = tuple(out_indices)
    if not out_indices or any(isinstance(i, bool) or i not in range(num_outputs)
                              for i in out_indices):
        raise ValueError(f'{name}: out_indices={out_indices} must be a non-empty subset of '
                         f'0..{num_outputs - 1} ({meaning})')
    if len(set(out_indices)) != len(out_indices):
        dup = sorted({i for i in out_indices if out_indices.count(i) > 1})
        raise ValueError(f'{name}: out_indices={out_indices} repeats {dup}: each of '
                         f'0..{num_outputs - 1} ({meaning}) may appear once')
    return out_indices


def check_frozen_stages(name: str, frozen_stages: int, num_stages: int) -> None:
    """ValueError unless ``-1 <= frozen_stages <= num_stages``."""
    if frozen_stages not in range(-1, num_stages + 1):
        raise ValueError(f'{name}: frozen_stages={frozen_stages} is not in -1..{num_stages}')


def resolve_arch(name: str, arch, choices, prefix: str) -> str:
    """The key of ``choices`` that ``arch`` names, or a ValueError listing them.

    One rule for every mmext backbone: a variant is named as in its paper, case-insensitively,
    with or without the family prefix -- ``'49S'``, ``'49s'``, ``'SpineNet-49S'`` and
    ``'spinenet_49s'`` all name SpineNet-49S; ``'S'``, ``'s'``, ``'mixnet-s'`` MixNet-S."""
    text = str(arch).strip()
    lowered = text.lower()
    for sep in ('-', '_', ''):
        if lowered.startswith(prefix.lower() + sep) and len(lowered) > len(prefix + sep):
            lowered = lowered[len(prefix + sep):]
            break
    for key in choices:
        if lowered == str(key).lower():
            return key
    raise ValueError(f'{name}: arch={arch!r} is not one of {list(choices)} (case-insensitive, '
                     f'with or without the prefix {prefix + "-"!r})')


def check_positive_int(name: str, arg: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or a ValueError unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f'{name}: {arg}={value!r} must be an integer >= {minimum}')
    return value
