"""ESPNetv2 backbone (Mehta, Rastegari, Shapiro, Hajishirzi, "ESPNetv2: A Light-weight, Power
Efficient, and General Purpose Convolutional Neural Network", CVPR 2019, arXiv:1811.11431).

The width table (channels of levels 1-5 and of the final 1x1 per width scale ``s``: the
paper's ImageNet results table, official ``espnetv2_config.sc_ch_dict``) and the level layout
(units per level, receptive-field limits) are data at the top of this file; structure follows
the official ImageNet model (sacmehta/EdgeNets ``model/classification/espnetv2.py``):

* level 1: 3x3/2 conv + BN + PReLU (stride 2);
* levels 2-5: a :class:`~mmext.models.layers.eesp.StridedEESP` (strides 4, 8, 16, 32) followed by
  0 / 3 / 7 / 3 :class:`~mmext.models.layers.eesp.EESP` units; levels 2-4 take the long-range
  shortcut from the input image; level 5 takes it in the EdgeNets detector
  (``model/detection/espnetv2.py``, ``ESPNetv2SSD.forward`` passes the image to ``level5_0``)
  but not in the ImageNet model (``EESPNet.forward`` calls ``level5_0`` without it);
* level 5 ends with a depth-wise 3x3 conv + BN + PReLU, then the grouped (K) 1x1 conv to the
  final width + BN + PReLU (official ``level5[3]``, ``level5[4]``);
* ImageNet head (``num_classes > 0``): global average pool, dropout 0.2, linear.

Dilation rates come from the receptive-field limits 13, 11, 9, 7, 5 of the five levels
(official ``recept_limit``): (1, 2, 3, 4) up to the level-4 strided unit, (1, 1, 2, 3) for the
level-4 EESPs and the level-5 strided unit, (1, 1, 1, 2) for the level-5 EESPs.

Outputs (``num_classes == 0``): a tuple of the levels in ``out_indices`` -- index ``i`` is level
``i + 1`` with stride ``2 ** (i + 1)`` and ``ESPNetv2.out_channels[i]`` channels, i.e. for
``s = 2.0``: strides 2, 4, 8, 16, 32 with 32, 128, 256, 512, 1280 channels. The EdgeNets SSD
takes indices 2-4. Its detector keeps the final 1x1 (``#del self.basenet.level5[4]`` is commented
out, so its level-5 features have the final width, 1280 at ``s = 2.0``) and feeds the image
shortcut to level 5: both are the defaults here (``final_conv=True``,
``level5_image_shortcut=None`` = on for detection). ``final_conv=False,
level5_image_shortcut=False`` is mmext's earlier detection backbone (level 5 ends at the
depth-wise conv with ``widths[4]`` channels, 1024 at ``s = 2.0``).
"""
from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from ...registry import MODELS
from .base import (FreezableBackbone, check_frozen_stages, check_out_indices,
                   check_positive_int)
from ..layers.eesp import EESP, StridedEESP

# width scale s -> channels of levels 1..5 and of the final 1x1 (the paper's ImageNet table;
# official ``sc_ch_dict``). Paper figures at 224 px, ImageNet head: params / FLOPs (multiply-adds)
# 0.5: 1.24 M / 28.4 M, 1.0: 1.67 M / 85.7 M, 1.25: 1.96 M / 123.4 M, 1.5: 2.31 M / 168.6 M,
# 2.0: 3.49 M / 284.8 M.
ESPNETV2_WIDTHS = {
    0.5: (16, 32, 64, 128, 256, 1024),
    1.0: (32, 64, 128, 256, 512, 1024),
    1.25: (32, 80, 160, 320, 640, 1024),
    1.5: (32, 96, 192, 384, 768, 1024),
    2.0: (32, 128, 256, 512, 1024, 1280),
}

# level -> (EESP units after the strided unit, receptive-field limit of the strided unit, of the
# EESP units, image shortcut in the ImageNet model). Official: rep_layers [0, 3, 7, 3],
# recept_limit [13, 11, 9, 7, 5] where the level-l strided unit uses limit[l - 2] and the level-l
# EESPs limit[l - 1]. Level 5's shortcut is ``level5_image_shortcut`` (on in the detector).
ESPNETV2_LEVELS = {
    2: (0, 13, 11, True),
    3: (3, 11, 9, True),
    4: (7, 9, 7, True),
    5: (3, 7, 5, False),
}


def resolve_width(widen_factor) -> float:
    """The width scale ``s`` as a key of ``ESPNETV2_WIDTHS``: a number or its text, with or
    without the prefix ``'espnetv2-'`` (``2``, ``'2.0'``, ``'ESPNetv2-2.0'``), else a
    ValueError listing the paper's scales."""
    text = str(widen_factor).strip().lower()
    for prefix in ('espnetv2-', 'espnetv2_', 'espnetv2'):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    try:
        value = float(text)
    except ValueError:
        value = None
    if isinstance(widen_factor, bool) or value not in ESPNETV2_WIDTHS:
        raise ValueError(f'ESPNetv2: widen_factor={widen_factor!r} is not one of '
                         f'{list(ESPNETV2_WIDTHS)} (the paper\'s width scales s)')
    return value


@MODELS.register_module()
class ESPNetv2(FreezableBackbone):
    """ESPNetv2 backbone with EESP units.

    Args:
        widen_factor (float): width scale ``s``, one of 0.5, 1.0, 1.25, 1.5, 2.0.
            Default 2.0 (the EdgeNets detection backbone).
        in_channels (int): input image channels. Default 3.
        num_branches (int): K, parallel branches per EESP and groups of the 1x1 convolutions.
            Default 4 (paper).
        out_indices (Sequence[int]): levels to return (0-4 = levels 1-5, strides 2-32).
            Default (2, 3, 4): strides 8, 16, 32. Ignored when ``num_classes > 0``.
        num_classes (int): > 0 adds the ImageNet head (final 1x1, pooling, dropout, linear) and
            ``forward`` returns ``(N, num_classes)`` logits -- for parameter/FLOP counting against
            the paper and classification pre-training. Default 0 (detection backbone).
        dropout (float): dropout before the classifier (official 0.2).
        final_conv (bool): end level 5 with the grouped 1x1 conv to the final width, as the
            official model and the EdgeNets detector. Default True; False ends it at the
            depth-wise 3x3 (``widths[4]`` channels; detection only).
        level5_image_shortcut (bool, optional): the image shortcut into the level-5 strided
            unit. Default None: on for detection (EdgeNets ``ESPNetv2SSD``), off with the
            ImageNet head (EdgeNets ``EESPNet``).
        frozen_stages (int): -1 freezes nothing; ``i`` in 1..5 freezes levels 1..i.
        norm_cfg (dict): norm layer. Default BN.
        norm_eval (bool): keep BN layers in eval mode while training. Default False.
        init_cfg: mmengine init config; default Kaiming (fan-out) conv / constant BN / normal
            linear (std 0.001) as the official ``init_params``.
    """
    arch_settings = ESPNETV2_WIDTHS
    # stride of each output index
    strides = (2, 4, 8, 16, 32)

    def __init__(self,
                 widen_factor: float = 2.0,
                 in_channels: int = 3,
                 num_branches: int = 4,
                 out_indices: Sequence[int] = (2, 3, 4),
                 num_classes: int = 0,
                 dropout: float = 0.2,
                 final_conv: bool = True,
                 level5_image_shortcut: bool = None,
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 init_cfg=None):
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d', mode='fan_out'),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
                        dict(type='Normal', layer='Linear', std=0.001)]
        super().__init__(init_cfg)
        widen_factor = resolve_width(widen_factor)
        widths = self.arch_settings[widen_factor]
        check_positive_int('ESPNetv2', 'in_channels', in_channels)
        check_positive_int('ESPNetv2', 'num_branches', num_branches)
        check_positive_int('ESPNetv2', 'num_classes', num_classes, minimum=0)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'ESPNetv2: dropout={dropout} must be in [0, 1)')
        out_indices = check_out_indices('ESPNetv2', out_indices, 5, 'levels 1-5, strides 2-32')
        check_frozen_stages('ESPNetv2', frozen_stages, 5)
        for i, c in enumerate(widths[1:5]):
            if c % num_branches:
                raise ValueError(f'ESPNetv2: level-{i + 2} channels {c} are not divisible by '
                                 f'num_branches={num_branches}')
        self.widen_factor = float(widen_factor)
        self.out_indices = out_indices
        # not `num_classes`: mmdet's NumClassCheckHook compares any such attribute with the
        # dataset's classes
        self.with_classifier = num_classes > 0
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        if num_classes > 0 and not final_conv:
            raise ValueError('ESPNetv2: final_conv=False drops the 1x1 the ImageNet head needs; '
                             'use it with num_classes=0')
        if level5_image_shortcut is None:
            level5_image_shortcut = num_classes == 0
        self.final_conv = bool(final_conv)
        self.level5_image_shortcut = bool(level5_image_shortcut)
        self.out_channels = list(widths[:4]) + [widths[5] if final_conv else widths[4]]

        prelu = lambda c: dict(type='PReLU', num_parameters=c)  # noqa: E731
        self.level1 = ConvModule(in_channels, widths[0], 3, stride=2, padding=1, bias=False,
                                 norm_cfg=norm_cfg, act_cfg=prelu(widths[0]))
        self.levels = nn.ModuleList()
        for level, (num_units, rf_strided, rf_unit, image_shortcut) in ESPNETV2_LEVELS.items():
            c_in, c_out = widths[level - 2], widths[level - 1]
            if level == 5:
                image_shortcut = self.level5_image_shortcut
            units = [StridedEESP(c_in, c_out, num_branches, receptive_field_limit=rf_strided,
                                 image_channels=in_channels, image_shortcut=image_shortcut,
                                 norm_cfg=norm_cfg)]
            units += [EESP(c_out, c_out, num_branches=num_branches,
                           receptive_field_limit=rf_unit, norm_cfg=norm_cfg)
                      for _ in range(num_units)]
            if level == 5:
                # official level5[3]: depth-wise 3x3 + BN + PReLU
                units.append(ConvModule(c_out, c_out, 3, padding=1, groups=c_out, bias=False,
                                        norm_cfg=norm_cfg, act_cfg=prelu(c_out)))
                if final_conv:
                    # official level5[4]: grouped 1x1 to the final width + BN + PReLU
                    units.append(ConvModule(c_out, widths[5], 1, groups=num_branches,
                                            bias=False, norm_cfg=norm_cfg,
                                            act_cfg=prelu(widths[5])))
            self.levels.append(nn.ModuleList(units))

        if num_classes > 0:
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout),
                nn.Linear(widths[5], num_classes))
        # frozen before any wrapper (DDP) sees the parameters, not only in train()
        self._freeze_stages()

    def forward(self, x: torch.Tensor):
        image = x
        x = self.level1(x)
        outs = [x]
        for units in self.levels:
            x = units[0](x, image)
            for unit in units[1:]:
                x = unit(x)
            outs.append(x)
        if self.with_classifier:
            return self.head(x)
        return tuple(outs[i] for i in self.out_indices)

    def frozen_modules(self):
        return ([self.level1] + list(self.levels))[:max(self.frozen_stages, 0)]
