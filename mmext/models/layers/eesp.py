"""EESP units of ESPNetv2 (Mehta et al., "ESPNetv2: A Light-weight, Power Efficient, and General
Purpose Convolutional Neural Network", CVPR 2019, arXiv:1811.11431).

* :class:`EESP` -- extremely efficient spatial pyramid of depth-wise dilated convolutions:
  grouped 1x1 reduce (BN + PReLU) -> K depth-wise dilated 3x3 branches -> hierarchical feature
  fusion (cumulative sum over the branches, smallest receptive field first) -> concat ->
  BN + PReLU -> grouped 1x1 expand + BN -> residual add -> PReLU.
* :class:`StridedEESP` -- the down-sampling unit: a stride-2 EESP producing ``out - in`` channels
  concatenated with a 3x3/2 average pool of the input, plus the long-range shortcut from the
  input image (repeated 3x3/2 average pooling, 3x3 conv 3->3 + BN + PReLU, 1x1 conv -> ``out`` +
  BN), then PReLU.

Layout, layer order and the receptive-field rule follow the official code (sacmehta/EdgeNets
``nn_layers/eesp.py``).
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer


def eesp_dilations(num_branches: int, receptive_field_limit: int) -> List[int]:
    """Dilation rates of an EESP unit's branches, ascending (official ``k_sizes`` rule).

    Branch ``i`` would use a (3 + 2i)-pixel receptive field (a 3x3 kernel with dilation
    ``i + 1``); one above ``receptive_field_limit`` (official ``recept_limit``: 13, 11, 9, 7, 5
    at the five spatial levels) falls back to dilation 1. Sorting puts the equal-field branches
    first, so hierarchical fusion only adds fields of growing size (no gridding artefacts).

    >>> eesp_dilations(4, 13), eesp_dilations(4, 7), eesp_dilations(4, 5)
    ([1, 2, 3, 4], [1, 1, 2, 3], [1, 1, 1, 2])
    """
    if num_branches < 1:
        raise ValueError(f'EESP: num_branches={num_branches} must be >= 1')
    if receptive_field_limit < 3:
        raise ValueError(f'EESP: receptive_field_limit={receptive_field_limit} must be >= 3 '
                         '(the field of one 3x3 kernel)')
    return sorted(i + 1 if 3 + 2 * i <= receptive_field_limit else 1
                  for i in range(num_branches))


def _prelu_cfg(channels):
    # mmcv's PReLU takes num_parameters; ESPNetv2 uses one slope per channel
    return dict(type='PReLU', num_parameters=channels)


class EESP(nn.Module):
    """Extremely Efficient Spatial Pyramid unit (the paper's EESP figure).

    Args:
        in_channels (int): input channels; must be divisible by ``num_branches`` (grouped 1x1).
        out_channels (int): output channels; must be divisible by ``num_branches**2``
            (each branch has ``out_channels / num_branches`` depth-wise channels, the output
            of a ``num_branches``-group 1x1).
        stride (int): 1, or 2 for the stride-2 unit inside :class:`StridedEESP`.
        num_branches (int): K, parallel dilated branches (paper: 4). Also the group count of
            the 1x1 reduce/expand convolutions.
        dilations (Sequence[int], optional): per-branch dilation; default from
            ``receptive_field_limit`` via :func:`eesp_dilations`.
        receptive_field_limit (int): largest receptive field of a branch (paper: 13..5).
        residual (bool): add the input and apply the final PReLU (the plain unit). The strided
            unit sets it False and returns the expanded (pre-activation) features.
        norm_cfg (dict): norm layer config. Default BN.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 num_branches: int = 4,
                 dilations: Optional[Sequence[int]] = None,
                 receptive_field_limit: int = 7,
                 residual: bool = True,
                 norm_cfg: dict = dict(type='BN')):
        super().__init__()
        k = num_branches
        if stride not in (1, 2):
            raise ValueError(f'EESP: stride={stride} is not one of [1, 2]')
        for name, c in (('in_channels', in_channels), ('out_channels', out_channels)):
            if c % k != 0:
                raise ValueError(f'EESP: {name}={c} is not divisible by num_branches={k} '
                                 '(the grouped 1x1 convolutions need equal groups)')
        if (out_channels // k) % k:
            raise ValueError(f'EESP: out_channels / num_branches = {out_channels // k} is not '
                             f'divisible by num_branches={k} (the grouped 1x1 reduce outputs '
                             'one branch width)')
        if dilations is None:
            dilations = eesp_dilations(k, receptive_field_limit)
        dilations = list(dilations)
        if len(dilations) != k:
            raise ValueError(f'EESP: {len(dilations)} dilations {dilations} for '
                             f'num_branches={k}')
        self.stride = stride
        self.dilations = dilations
        self.residual = residual and stride == 1 and in_channels == out_channels
        self.apply_act = residual  # the strided unit activates after its concat/shortcut
        width = out_channels // k
        self.reduce = ConvModule(in_channels, width, 1, groups=k, bias=False,
                                 norm_cfg=norm_cfg, act_cfg=_prelu_cfg(width))
        self.branches = nn.ModuleList(
            nn.Conv2d(width, width, 3, stride=stride, padding=d, dilation=d, groups=width,
                      bias=False) for d in dilations)
        self.cat_norm = build_norm_layer(norm_cfg, out_channels)[1]
        self.cat_act = nn.PReLU(out_channels)
        # a K-group 1x1 is K point-wise convolutions, one per branch (paper Sec. 3.2)
        self.expand = ConvModule(out_channels, out_channels, 1, groups=k, bias=False,
                                 norm_cfg=norm_cfg, act_cfg=None)
        self.act = nn.PReLU(out_channels) if self.apply_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.reduce(x)
        # hierarchical feature fusion: branch i adds the fused output of branch i - 1
        outs = [self.branches[0](reduced)]
        for branch in self.branches[1:]:
            outs.append(branch(reduced) + outs[-1])
        out = self.expand(self.cat_act(self.cat_norm(torch.cat(outs, dim=1))))
        if self.residual:
            out = out + x
        return self.act(out)


class StridedEESP(nn.Module):
    """Strided EESP: the down-sampling unit of ESPNetv2 (paper Fig. 3b).

    Args:
        in_channels (int): input feature channels.
        out_channels (int): output channels, > ``in_channels`` (the avg-pooled input fills the
            first ``in_channels``, a stride-2 EESP the remaining ``out - in``).
        num_branches (int): K of the inner EESP (paper: 4).
        receptive_field_limit (int): of the inner EESP's branches.
        dilations (Sequence[int], optional): overrides ``receptive_field_limit``.
        image_channels (int): channels of the input image for the long-range shortcut.
        shortcut_channels (int): width of the shortcut's 3x3 conv (official: 3).
        image_shortcut (bool): build the long-range shortcut from the image. The official
            ImageNet model uses it at levels 2-4, not in the level-5 unit.
        norm_cfg (dict): norm layer config. Default BN.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_branches: int = 4,
                 receptive_field_limit: int = 9,
                 dilations: Optional[Sequence[int]] = None,
                 image_channels: int = 3,
                 shortcut_channels: int = 3,
                 image_shortcut: bool = True,
                 norm_cfg: dict = dict(type='BN')):
        super().__init__()
        if out_channels <= in_channels:
            raise ValueError(f'StridedEESP: out_channels={out_channels} must exceed '
                             f'in_channels={in_channels} (the pooled input is concatenated)')
        self.eesp = EESP(in_channels, out_channels - in_channels, stride=2,
                         num_branches=num_branches, dilations=dilations,
                         receptive_field_limit=receptive_field_limit, residual=False,
                         norm_cfg=norm_cfg)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.image_shortcut = None
        if image_shortcut:
            self.image_shortcut = nn.Sequential(
                ConvModule(image_channels, shortcut_channels, 3, padding=1, bias=False,
                           norm_cfg=norm_cfg, act_cfg=_prelu_cfg(shortcut_channels)),
                ConvModule(shortcut_channels, out_channels, 1, bias=False, norm_cfg=norm_cfg,
                           act_cfg=None))
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor, image: Optional[torch.Tensor] = None) -> torch.Tensor:
        pooled = self.pool(x)
        out = torch.cat([pooled, self.eesp(x)], dim=1)
        if self.image_shortcut is not None and image is not None:
            # pool the image down to this unit's output resolution (works for any H, W)
            while image.shape[-2:] != out.shape[-2:]:
                if image.shape[-2] < out.shape[-2] or image.shape[-1] < out.shape[-1]:
                    raise RuntimeError(f'StridedEESP: image {tuple(image.shape[-2:])} cannot '
                                       f'be pooled to {tuple(out.shape[-2:])}')
                image = F.avg_pool2d(image, 3, stride=2, padding=1)
            out = out + self.image_shortcut(image)
        return self.act(out)
