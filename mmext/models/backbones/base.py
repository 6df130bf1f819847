"""Behaviour every mmext backbone shares with mmdet's: ``frozen_stages`` and ``norm_eval``."""
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
