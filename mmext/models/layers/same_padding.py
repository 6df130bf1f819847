"""TensorFlow 'SAME' padding for convolutions and max-pools.

TensorFlow's ``padding='SAME'`` pads ``total = max((ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)``
pixels per axis, ``total // 2`` before and the rest after. For stride 1 and odd kernels that is
PyTorch's symmetric ``k // 2``; for stride 2 on even sizes it is asymmetric (3x3/2: 0 before,
1 after; 7x7/2: 2 before, 3 after), so weights trained in TensorFlow give other outputs under
PyTorch's padding. TF's max-pool ignores padded cells, hence the pool pads with ``-inf``.
(The same rule as timm's ``Conv2dSame`` / ``MaxPool2dSame``, ``timm/layers/padding.py``.)

The layers keep ``nn.Conv2d`` / ``nn.MaxPool2d`` parameters and state-dict keys, so a model
switches convention without changing its checkpoints.
"""
import math

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule


def same_pad_amounts(size, kernel, stride, dilation=1):
    """(before, after) padding TensorFlow's 'SAME' adds on an axis of length ``size``."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pad_same(x, kernel, stride, dilation=(1, 1), value=0.0):
    """Pad an NCHW tensor as TF 'SAME' would for the given kernel/stride/dilation."""
    top, bottom = same_pad_amounts(x.shape[-2], kernel[0], stride[0], dilation[0])
    left, right = same_pad_amounts(x.shape[-1], kernel[1], stride[1], dilation[1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow 'SAME' padding computed from the input size."""

    def __init__(self, *args, **kwargs):
        kwargs['padding'] = 0
        super().__init__(*args, **kwargs)

    def forward(self, x):
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MaxPool2dSame(nn.MaxPool2d):
    """``nn.MaxPool2d`` with TensorFlow 'SAME' padding (padded cells never win)."""

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride, padding=0)

    def forward(self, x):
        k = nn.modules.utils._pair(self.kernel_size)
        s = nn.modules.utils._pair(self.stride)
        x = pad_same(x, k, s, value=-float('inf'))
        return F.max_pool2d(x, k, s, 0)


def conv_module_same(in_channels, out_channels, kernel_size, stride=1, **kwargs):
    """An mmcv ``ConvModule`` whose conv pads as TF 'SAME' (same keys as a plain one).

    mmcv builds convs from a registry lookup in the current default scope, which a plugin
    cannot rely on for both mmdet and mmpose scopes; the conv is swapped after building instead.
    """
    kwargs.pop('padding', None)
    module = ConvModule(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                        **kwargs)
    old = module.conv
    module.conv = Conv2dSame(old.in_channels, old.out_channels, old.kernel_size, old.stride,
                             dilation=old.dilation, groups=old.groups, bias=old.bias is not None)
    return module


def convert_to_same_padding(module: nn.Module) -> nn.Module:
    """Make every strided ``nn.Conv2d`` inside ``module`` pad as TF 'SAME', in place.

    With stride 1 and odd kernels TF 'SAME' is PyTorch's symmetric ``k // 2`` already, so
    only strided convs change. Weights, state-dict keys and parameter objects are kept.
    """
    for name, child in list(module.named_children()):
        if type(child) is nn.Conv2d and max(child.stride) > 1:
            same = Conv2dSame(child.in_channels, child.out_channels, child.kernel_size,
                              child.stride, dilation=child.dilation, groups=child.groups,
                              bias=child.bias is not None)
            same.weight = child.weight
            if child.bias is not None:
                same.bias = child.bias
            setattr(module, name, same)
        else:
            convert_to_same_padding(child)
    return module
