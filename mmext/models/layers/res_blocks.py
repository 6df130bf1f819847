"""ResNet basic/bottleneck blocks with a configurable activation and stochastic depth.

mmdet's ResNet blocks hard-wire ReLU; SpineNet (Du et al. 2020, Sec. 4) uses swish, and its
blocks are re-used by other scale-permuted designs, so the blocks live here.
"""
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule


class _ResBlock(BaseModule):
    expansion = 1

    def _finish(self, in_channels, out_channels, stride, norm_cfg, act_cfg, drop_path_rate):
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvModule(in_channels, out_channels, 1, stride=stride, bias=False,
                                       norm_cfg=norm_cfg, act_cfg=None)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.act = build_activation_layer(act_cfg)

    def forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.drop_path(self.body(x)) + identity)


class BasicResBlock(_ResBlock):
    """3x3 -> 3x3 residual block ("residual" in SpineNet's block list); out = ``filters``."""
    expansion = 1

    def __init__(self, in_channels, filters, stride=1, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), drop_path_rate=0.0, init_cfg=None):
        super().__init__(init_cfg)
        self.out_channels = filters
        self.body = nn.Sequential(
            ConvModule(in_channels, filters, 3, stride=stride, padding=1, bias=False,
                       norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(filters, filters, 3, padding=1, bias=False, norm_cfg=norm_cfg,
                       act_cfg=None))
        self._finish(in_channels, filters, stride, norm_cfg, act_cfg, drop_path_rate)


class BottleneckResBlock(_ResBlock):
    """1x1 -> 3x3 -> 1x1 bottleneck; out = 4 x ``filters`` (SpineNet's "bottleneck")."""
    expansion = 4

    def __init__(self, in_channels, filters, stride=1, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), drop_path_rate=0.0, init_cfg=None):
        super().__init__(init_cfg)
        out = filters * self.expansion
        self.out_channels = out
        self.body = nn.Sequential(
            ConvModule(in_channels, filters, 1, bias=False, norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(filters, filters, 3, stride=stride, padding=1, bias=False,
                       norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(filters, out, 1, bias=False, norm_cfg=norm_cfg, act_cfg=None))
        self._finish(in_channels, out, stride, norm_cfg, act_cfg, drop_path_rate)


RES_BLOCKS = {'residual': BasicResBlock, 'bottleneck': BottleneckResBlock}


def res_block_group(block, in_channels, filters, repeats, **kwargs):
    """``repeats`` blocks; only the first may project (SpineNet's ``block_group``)."""
    cls = RES_BLOCKS[block]
    layers = [cls(in_channels, filters, **kwargs)]
    layers += [cls(filters * cls.expansion, filters, **kwargs) for _ in range(1, repeats)]
    return nn.Sequential(*layers)
