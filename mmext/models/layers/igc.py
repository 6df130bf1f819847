"""Interlaced grouped convolution and the CLC block of clcNet (Zhang, "clcNet: Improving the
Efficiency of Convolutional Neural Network using Channel Local Convolutions", CVPR 2018,
arXiv:1712.06145).

A CLC block is a grouped 3x3 convolution with ``g1`` groups (GC), a channel interlace, then a
grouped 1x1 convolution with ``g2`` groups: the interlace makes each 1x1 group read one channel
from every ``C / g1``-th position, i.e. from as many different 3x3 groups as possible (an
"interlaced grouped convolution", IGC). Layer order follows the official Torch7 code
(dqzhang17/clcnet.torch ``models/clcnet.lua``): 3x3 GC -> BN -> interlace -> 1x1 GC -> BN -> ReLU.

Channel receptive field (the paper's "full channel receptive field" rule): an output channel of the
block depends on ``g2``'s group of ``C / g2`` interlaced channels, which come from
``min(g1, C / g2)`` distinct 3x3 groups of ``C / g1`` input channels each. It sees all ``C``
inputs exactly when ``C / g2 >= g1``, i.e. ``g1 * g2 <= C`` (:func:`clc_full_receptive_field`).
"""
import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer


def channel_interlace(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interlace the channels of ``x`` (N, C, ...) that come in ``groups`` contiguous groups.

    Output channel ``k * groups + a`` is input channel ``a * (C / groups) + k``: the k-th
    channel of every group, then the (k+1)-th, ... -- the official ``ChannelInterlace`` forward
    index, which is ShuffleNet's channel shuffle.
    """
    n, c = x.shape[:2]
    if c % groups:
        raise ValueError(f'channel_interlace: {c} channels are not divisible by '
                         f'groups={groups}')
    return x.reshape(n, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


class ChannelInterlace(nn.Module):
    """Module form of :func:`channel_interlace` (no parameters)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        if groups < 1 or channels % groups:
            raise ValueError(f'ChannelInterlace: channels={channels} are not divisible by '
                             f'groups={groups}')
        self.channels = channels
        self.groups = groups

    def forward(self, x):
        return channel_interlace(x, self.groups)

    def extra_repr(self):
        return f'channels={self.channels}, groups={self.groups}'


def clc_full_receptive_field(channels: int, g1: int, g2: int) -> bool:
    """Whether every output channel of a CLC block sees all ``channels`` inputs (g1*g2 <= C)."""
    return g1 * g2 <= channels


class CLCBlock(nn.Module):
    """Channel local convolution block: 3x3 GC(g1) -> BN -> interlace -> 1x1 GC(g2) -> BN -> act.

    Args:
        in_channels (int): C, divisible by ``g1`` and ``g2``.
        out_channels (int): divisible by ``g2``.
        stride (int): of the 3x3 convolution. Default 1.
        g1 (int): groups of the 3x3 convolution (official: ``C / 2``, two channels a group).
        g2 (int): groups of the 1x1 convolution (official: 2).
        allow_partial_field (bool): allow ``g1 * g2 > C``, where output channels do not see
            every input channel. Default False: such a configuration raises ``ValueError``.
        norm_cfg (dict): norm layer. Default BN.
        act_cfg (dict): activation after the 1x1. Default ReLU.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 g1: int = 1,
                 g2: int = 1,
                 allow_partial_field: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')):
        super().__init__()
        for name, c, gname, g in (('in_channels', in_channels, 'g1', g1),
                                  ('in_channels', in_channels, 'g2', g2),
                                  ('out_channels', out_channels, 'g2', g2)):
            if g < 1 or c % g:
                raise ValueError(f'CLCBlock: {name}={c} is not divisible by {gname}={g}')
        if not allow_partial_field and not clc_full_receptive_field(in_channels, g1, g2):
            raise ValueError(
                f'CLCBlock: g1={g1} * g2={g2} = {g1 * g2} > in_channels={in_channels}: output '
                'channels would not see every input channel (clcNet full channel receptive '
                'field needs g1 * g2 <= C); pass allow_partial_field=True to build it anyway')
        self.g1, self.g2 = g1, g2
        # biases are redundant before BN (the official Torch model drops them under cuDNN)
        self.conv3x3 = nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1,
                                 groups=g1, bias=False)
        self.norm1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.interlace = ChannelInterlace(in_channels, g1)
        self.conv1x1 = nn.Conv2d(in_channels, out_channels, 1, groups=g2, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.act = build_activation_layer(act_cfg) if act_cfg else nn.Identity()

    def forward(self, x):
        x = self.interlace(self.norm1(self.conv3x3(x)))
        return self.act(self.norm2(self.conv1x1(x)))
