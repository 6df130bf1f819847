"""clcNet backbone (Zhang, "clcNet: Improving the Efficiency of Convolutional Neural Network using
Channel Local Convolutions", CVPR 2018, arXiv:1712.06145).

Every layer after the stem is a :class:`~mmext.models.layers.igc.CLCBlock` (grouped 3x3 with
``g1 = C_in / 2`` groups -> BN -> channel interlace -> grouped 1x1 with ``g2 = 2`` groups -> BN ->
ReLU); ``g1 * g2 = C_in`` so every block has a full channel receptive field. The layout is the
official Torch7 model (dqzhang17/clcnet.torch ``models/clcnet.lua``, options ``a, b, c, d``):

* stem: 3x3/2 conv 3 -> 32 + BN + ReLU, then clc(32 -> 64, stride 1);
* four stages: clc(C -> 2C, stride 2) then ``a / b / c / d`` blocks clc(2C -> 2C), ending at
  128 / 256 / 512 / 1024 channels (strides 4, 8, 16, 32);
* ImageNet head (``num_classes > 0``): global average pool, linear.

clcNet-A is (a, b, c, d) = (1, 1, 5, 2), clcNet-B (1, 1, 7, 3) (official README: top-1 70.4 % and
71.6 %). Parameters / multiply-adds at 224 px derived from the official code (not the paper's
table): A 3.23 M / 343 M, B 4.05 M / 425 M.

Outputs (``num_classes == 0``): a tuple of the stages in ``out_indices`` -- index ``i`` has stride
``2 ** (i + 2)`` and ``CLCNet.out_channels[i]`` = 128 * 2**i channels (strides 4, 8, 16, 32 with
128, 256, 512, 1024 channels).
"""
from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from ...registry import MODELS
from .base import (FreezableBackbone, check_frozen_stages, check_out_indices,
                   check_positive_int, resolve_arch)
from ..layers.igc import CLCBlock

# arch -> stride-1 CLC blocks after each stage's strided block (official options a, b, c, d)
CLCNET_ARCHS = {
    'A': (1, 1, 5, 2),
    'B': (1, 1, 7, 3),
}
STEM_CHANNELS = (32, 64)  # stem conv, then the first (stride-1) CLC block
STAGE_CHANNELS = (128, 256, 512, 1024)


@MODELS.register_module()
class CLCNet(FreezableBackbone):
    """clcNet backbone built from channel-local-convolution (CLC) blocks.

    Args:
        arch (str): ``'A'`` or ``'B'`` (official ``a, b, c, d`` options; case-insensitive,
            with or without the prefix ``'clcnet-'``), or pass
            ``stage_blocks`` for a custom depth.
        stage_blocks (Sequence[int], optional): stride-1 blocks per stage; overrides ``arch``.
        in_channels (int): input image channels. Default 3.
        group_width (int): input channels per group of the 3x3 convolutions, i.e.
            ``g1 = C_in / group_width`` (official: 2).
        g2 (int): groups of the 1x1 convolutions (official: 2).
        allow_partial_field (bool): build blocks with ``g1 * g2 > C`` (not every output channel
            sees every input channel) instead of raising ``ValueError``. Default False.
        out_indices (Sequence[int]): stages to return, 0-3 = strides 4, 8, 16, 32.
            Default (1, 2, 3). Ignored when ``num_classes > 0``.
        num_classes (int): > 0 adds the ImageNet head (average pool + linear) and ``forward``
            returns logits. Default 0.
        frozen_stages (int): -1 freezes nothing; 0 freezes the stem; ``i`` also stages 1..i.
        norm_cfg (dict): norm layer. Default BN.
        norm_eval (bool): keep BN layers in eval mode while training. Default False.
        init_cfg: mmengine init config; default Kaiming conv (fan-out, as fb.resnet.torch which
            the official code uses) / constant BN.
    """
    arch_settings = CLCNET_ARCHS

    def __init__(self,
                 arch: str = 'A',
                 stage_blocks: Sequence[int] = None,
                 in_channels: int = 3,
                 group_width: int = 2,
                 g2: int = 2,
                 allow_partial_field: bool = False,
                 out_indices: Sequence[int] = (1, 2, 3),
                 num_classes: int = 0,
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 init_cfg=None):
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d', mode='fan_out'),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        super().__init__(init_cfg)
        if stage_blocks is None:
            stage_blocks = self.arch_settings[resolve_arch('CLCNet', arch, self.arch_settings,
                                                           'clcnet')]
        stage_blocks = tuple(stage_blocks)
        if len(stage_blocks) != 4 or any(isinstance(b, bool) or not isinstance(b, int) or b < 0
                                         for b in stage_blocks):
            raise ValueError(f'CLCNet: stage_blocks={stage_blocks} must be 4 integer counts '
                             f'>= 0')
        check_positive_int('CLCNet', 'in_channels', in_channels)
        check_positive_int('CLCNet', 'num_classes', num_classes, minimum=0)
        check_positive_int('CLCNet', 'g2', g2)
        out_indices = check_out_indices('CLCNet', out_indices, 4, 'strides 4, 8, 16, 32')
        check_frozen_stages('CLCNet', frozen_stages, 4)
        check_positive_int('CLCNet', 'group_width', group_width)
        if any(c % group_width for c in STEM_CHANNELS + STAGE_CHANNELS):
            raise ValueError(f'CLCNet: group_width={group_width} does not divide the channel '
                             f'widths {STEM_CHANNELS + STAGE_CHANNELS}')
        self.stage_blocks = stage_blocks
        self.out_indices = out_indices
        # not `num_classes`: mmdet's NumClassCheckHook compares any such attribute with the
        # dataset's classes
        self.with_classifier = num_classes > 0
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.out_channels = list(STAGE_CHANNELS)

        def clc(c_in, c_out, stride):
            return CLCBlock(c_in, c_out, stride, g1=c_in // group_width, g2=g2,
                            allow_partial_field=allow_partial_field, norm_cfg=norm_cfg)

        self.stem = nn.Sequential(
            ConvModule(in_channels, STEM_CHANNELS[0], 3, stride=2, padding=1, bias=False,
                       norm_cfg=norm_cfg, act_cfg=dict(type='ReLU')),
            clc(*STEM_CHANNELS, 1))
        self.stages = nn.ModuleList()
        c_in = STEM_CHANNELS[1]
        for c_out, num_blocks in zip(STAGE_CHANNELS, stage_blocks):
            self.stages.append(nn.Sequential(
                clc(c_in, c_out, 2), *(clc(c_out, c_out, 1) for _ in range(num_blocks))))
            c_in = c_out
        if num_classes > 0:
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                      nn.Linear(c_in, num_classes))
        # frozen before any wrapper (DDP) sees the parameters, not only in train()
        self._freeze_stages()

    def forward(self, x: torch.Tensor):
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        if self.with_classifier:
            return self.head(x)
        return tuple(outs[i] for i in self.out_indices)

    def frozen_modules(self):
        return ([self.stem] + list(self.stages))[:self.frozen_stages + 1]
