"""MixConv: mixed depthwise convolution (Tan & Le, "MixConv: Mixed Depthwise Convolutional
Kernels", BMVC 2019, arXiv:1907.09595, Sec. 3).

The channels are split into ``g`` groups, group ``i`` gets its own kernel (3x3, 5x5, 7x7, ...
in the paper), every group uses "same" padding and the same stride and dilation, and the outputs
are concatenated. The split is the official one (tensorflow/tpu ``mixnet/custom_layers.py``,
``_split_channels``): ``C // g`` channels each, the first group also takes the remainder; the
paper's exponential partition (Sec. 3.2: group ``i`` gets ``2**-(i+1)`` of the channels, the last
takes the rest) is an option.

The same split with 1x1 kernels and dense (not depthwise) groups is the grouped pointwise conv
MixNet uses for its expansion and projection layers (:class:`GroupedPointwiseConv2d`).

Both layers keep one ``nn.Conv2d`` per group (``convs.<i>``), so checkpoints map one to one onto
timm's ``MixedConv2d`` (``<i>.weight``) and the official per-group variables.

Two ways to run a depthwise MixConv, the same function (tested: outputs and gradients):

* ``'split'`` -- split the channels, one depthwise conv per group, concatenate (the official code
  and timm);
* ``'padded'`` -- one depthwise conv over all channels whose per-channel kernel is the group's
  kernel zero-padded (centred) to the largest size, with the largest kernel's padding: the zero
  taps add exact zeros, every non-zero tap reads the same input pixel as in ``'split'``. It
  costs ``k_max**2 / mean(k_i**2)`` times the multiply-adds but one kernel launch instead of
  ``g`` plus the split and the concatenation, which wins where the layer is launch- or
  memory-bound rather than compute-bound.

Dense groups (``depthwise=False``) with equal input and equal output splits take ``'padded'``
too: one conv with ``groups=g`` whose weight is the groups' kernels (zero-padded to the largest)
stacked. With MixNet's 1x1 groups it adds no multiply-adds and saves the split, the
concatenation of the outputs and that of the input gradients.

``impl='auto'`` (default) picks by shape at construction, from ``PADDED_MAX_COST``; the
parameters are the same either way, so a checkpoint does not depend on the choice.

With ``fast_backward=True`` (default) the depthwise groups whose shape was measured to gain
(kernels >= 5 in NCHW, small maps in channels-last) run through
:func:`~mmext.models.layers.depthwise_conv.depthwise_conv2d` when training on CPU: the same
forward, a backward whose weight gradient is a tiled GEMM instead of oneDNN's slow depthwise
kernel (that module's docstring); gradients equal to float rounding.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import MODELS
from .depthwise_conv import depthwise_conv2d

SPLITS = ('equal', 'exponential')
IMPLS = ('auto', 'split', 'padded')
# impl='auto' takes the padded single conv when it costs at most this many times the split
# convs' multiply-adds (k_max**2 * C / sum(k_i**2 * C_i)). Measured with benchmarks/mixconv.py
# --quick (CPU, 1 thread, MixNet-M's 16 layer shapes x 2 layouts): padded was slower on every one,
# 0.54x-0.91x of timm against 0.74x-1.26x for split (geometric means 0.71x vs 1.01x), so on CPU
# 'auto' keeps the per-group convs unless the padding adds no multiply-adds (equal kernels).
# For MixNet-M's 2-group 1x1 expansions/projections (dense groups, equal kernels: cost 1.0) the
# one grouped conv, forward + backward, batch 4, against timm's per-group MixedConv2d per layer
# (benchmarks/mixconv.py --pointwise --threads 1 0): NCHW 0.93x-1.12x at 1 thread, 0.84x-1.50x at
# 2; channels-last 0.68x-0.97x at 1 thread (PyTorch runs ungrouped 1x1 convs of small batches
# outside oneDNN there), 1.12x-1.67x at 2. In the whole NCHW MixNet-M training step it won at 1
# and 2 threads, and in the channels-last one too (benchmarks/mixconv.py --network-only: timm /
# mmext 1.17x-1.19x, impl='split' in these layers 1.13x-1.18x), so 'auto' takes it wherever the
# splits are equal.
PADDED_MAX_COST = 1.0


def padded_cost(kernels: Sequence[int], splits: Sequence[int]) -> float:
    """Multiply-adds of the padded single conv relative to the per-group convs (depthwise;
    for dense groups with equal splits the same ratio, ``k_max**2 * g / sum(k_i**2)``)."""
    kmax = max(kernels)
    return kmax * kmax * sum(splits) / sum(k * k * c for k, c in zip(kernels, splits))


def split_channels(channels: int, num_groups: int, mode: str = 'equal') -> List[int]:
    """Channels per group.

    Args:
        channels (int): channels to split.
        num_groups (int): number of groups ``g``.
        mode (str): ``'equal'`` -- ``channels // g`` each, the first group takes the remainder
            (official code); ``'exponential'`` -- group ``i`` gets ``channels // 2**(i+1)``, the
            last group the rest (paper Sec. 3.2, e.g. 32 -> 16, 8, 4, 4).

    Raises:
        ValueError: unknown mode, or a group would get no channel.
    """
    if mode not in SPLITS:
        raise ValueError(f'split_channels: mode={mode!r} is not one of {SPLITS}')
    if num_groups < 1:
        raise ValueError(f'split_channels: num_groups={num_groups} must be >= 1')
    if mode == 'equal':
        if num_groups > channels:
            raise ValueError(f'MixConv: {num_groups} groups for {channels} channels: every '
                             f'group needs at least one channel (use at most {channels} groups)')
        split = [channels // num_groups] * num_groups
        split[0] += channels - sum(split)
    else:
        split = [channels // 2**(i + 1) for i in range(num_groups - 1)]
        split.append(channels - sum(split))
        if min(split) < 1:
            raise ValueError(f'MixConv: the exponential split of {channels} channels into '
                             f'{num_groups} groups leaves a group empty ({split}); use fewer '
                             f'groups or split="equal"')
    return split


def _kernel_list(kernel_size, num_groups) -> List[int]:
    if isinstance(kernel_size, int):
        # the paper's default family: 3x3, 5x5, 7x7, ... starting from `kernel_size`
        kernels = [kernel_size + 2 * i for i in range(num_groups or 1)]
    else:
        kernels = [int(k) for k in kernel_size]
        if not kernels:
            raise ValueError('MixConv: kernel_size is an empty list')
        if num_groups is not None and num_groups != len(kernels):
            raise ValueError(f'MixConv: num_groups={num_groups} but kernel_size={kernels} '
                             f'has {len(kernels)} entries')
    bad = [k for k in kernels if k < 1 or k % 2 == 0]
    if bad:
        raise ValueError(f'MixConv: kernel sizes must be odd positive integers (same padding '
                         f'is symmetric only for odd kernels), got {bad} in {kernels}')
    return kernels


@MODELS.register_module()
class MixConv2d(nn.Module):
    """Mixed (depthwise) convolution: one kernel size per channel group, outputs concatenated.

    Args:
        in_channels (int): input channels.
        out_channels (int, optional): output channels; default ``in_channels``. Depthwise
            MixConv needs ``out_channels == in_channels``.
        kernel_size (int | Sequence[int]): a list gives one odd kernel per group, e.g.
            ``(3, 5, 7)``; an int ``k`` with ``num_groups=g`` gives ``k, k+2, ..., k+2(g-1)``
            (the paper's 3, 5, 7, ... family). Default 3.
        num_groups (int, optional): number of groups when ``kernel_size`` is an int.
        stride (int): stride of every group. Default 1.
        dilation (int): dilation of every group; padding is ``dilation * (k - 1) // 2`` ("same"
            for stride 1, the PyTorch convention of symmetric padding otherwise).
        depthwise (bool): True (default) for MDConv; False makes each group a dense conv
            between its input and output split (the grouped conv of MixNet).
        bias (bool): add a bias per group. Default False (a BN follows in MixNet).
        split (str): ``'equal'`` (default, official code) or ``'exponential'`` (paper Sec. 3.2).
        impl (str): ``'auto'`` (default), ``'split'`` or ``'padded'`` (see the module
            docstring; ``'padded'`` with dense groups needs equal channel splits); the same
            function and parameters either way.
        fast_backward (bool): compute a depthwise layer's gradients on CPU with
            :func:`~mmext.models.layers.depthwise_conv.depthwise_conv2d`'s backward where it
            was measured faster (default True); False keeps PyTorch's backward, whose
            gradients are bit-identical to timm's and which can be differentiated twice (the
            fast backward cannot: use False for gradient penalties).

    The layer keeps the input's memory format. On CPU, channels-last inputs are faster
    (oneDNN's depthwise kernels are NHWC-native; with ``fast_backward`` the gap is smaller:
    ``benchmarks/mixconv.py``), but converting around each layer of an NCHW network costs more
    than it saves: convert the whole network instead (``MixNet(channels_last=True)``).

    Raises:
        ValueError: even or non-positive kernel, more groups than channels, a depthwise layer
            with ``out_channels != in_channels``, an unknown split, channels, stride, dilation
            or groups that are not integers >= 1.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: Optional[int] = None,
                 kernel_size: Union[int, Sequence[int]] = 3,
                 num_groups: Optional[int] = None,
                 stride: int = 1,
                 dilation: int = 1,
                 depthwise: bool = True,
                 bias: bool = False,
                 split: str = 'equal',
                 impl: str = 'auto',
                 fast_backward: bool = True):
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f'MixConv: impl={impl!r} is not one of {IMPLS}')
        out_channels = in_channels if out_channels is None else out_channels
        for arg, value in (('in_channels', in_channels), ('out_channels', out_channels),
                           ('stride', stride), ('dilation', dilation)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'MixConv: {arg}={value!r} must be an integer >= 1')
        if num_groups is not None and (isinstance(num_groups, bool) or
                                       not isinstance(num_groups, int) or num_groups < 1):
            raise ValueError(f'MixConv: num_groups={num_groups!r} must be an integer >= 1')
        kernels = _kernel_list(kernel_size, num_groups)
        if depthwise and out_channels != in_channels:
            raise ValueError(f'MixConv: a depthwise MixConv keeps the channels, got '
                             f'in_channels={in_channels}, out_channels={out_channels}')
        g = len(kernels)
        in_splits = split_channels(in_channels, g, split)
        out_splits = in_splits if depthwise else split_channels(out_channels, g, split)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = tuple(kernels)
        self.stride, self.dilation = stride, dilation
        self.depthwise = depthwise
        self.splits = in_splits
        self.out_splits = out_splits
        # nn.Conv2d's attributes, read by mmcv's ConvModule when this is its conv layer
        self.padding = tuple(dilation * (k - 1) // 2 for k in kernels)
        self.groups = in_channels if depthwise else g
        self.transposed, self.output_padding = False, (0, 0)
        self.convs = nn.ModuleList(
            nn.Conv2d(ci, co, k, stride=stride, padding=dilation * (k - 1) // 2,
                      dilation=dilation, groups=ci if depthwise else 1, bias=bias)
            for k, ci, co in zip(kernels, in_splits, out_splits))
        self.impl = self._choose_impl(impl)
        self.fast_backward = bool(fast_backward)

    def _choose_impl(self, impl):
        if len(self.convs) == 1:
            return 'split'  # one conv: nothing to merge
        if not self.depthwise and (len(set(self.splits)) > 1 or len(set(self.out_splits)) > 1):
            if impl == 'padded':  # groups of different widths are no single grouped conv
                raise ValueError(f'MixConv: impl="padded" with dense groups needs equal channel '
                                 f'splits, got {self.splits} -> {self.out_splits}')
            return 'split'
        if impl == 'auto':
            cost = padded_cost(self.kernel_size, self.splits)
            return 'padded' if cost <= PADDED_MAX_COST else 'split'
        return impl

    def padded_weight(self):
        """(C_out, C_in / groups, k_max, k_max): every group's kernel zero-padded, centred,
        concatenated (``groups`` = ``self.groups``: the channels, or ``g`` for dense groups)."""
        kmax = max(self.kernel_size)
        return torch.cat([F.pad(conv.weight, [(kmax - k) // 2] * 4)
                          for conv, k in zip(self.convs, self.kernel_size)], 0)

    def forward(self, x):
        if self.impl == 'padded':
            bias = (torch.cat([c.bias for c in self.convs])
                    if self.convs[0].bias is not None else None)
            return F.conv2d(x, self.padded_weight(), bias, self.stride, max(self.padding),
                            self.dilation, self.groups)
        if len(self.convs) == 1:
            return self._group(self.convs[0], x)
        parts = torch.split(x, self.splits, 1)
        return torch.cat([self._group(m, part) for m, part in zip(self.convs, parts)], 1)

    def _group(self, conv, x):
        if not (self.depthwise and self.fast_backward):
            return conv(x)
        # the GEMM backward where it was measured faster, else the module itself (its hooks
        # and FLOP counters see the nn.Conv2d whenever the plain path runs)
        return depthwise_conv2d(x, conv.weight, conv.bias, self.stride, conv.padding[0],
                                self.dilation, fallback=conv)

    def extra_repr(self):
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'splits={self.splits}, stride={self.stride}, dilation={self.dilation}, '
                f'depthwise={self.depthwise}, impl={self.impl!r}, '
                f'fast_backward={self.fast_backward}')


@MODELS.register_module()
class GroupedPointwiseConv2d(MixConv2d):
    """Grouped 1x1 conv with MixConv's channel split (MixNet's expansion/projection layers, the
    ``a1.1``/``p1.1`` of the official block strings; official ``GroupedConv2D``): the input and
    the output are each split with :func:`split_channels` and group ``i`` maps input split ``i``
    to output split ``i``. With one group it is a plain 1x1 conv. With equal splits it runs as
    one ``groups``-grouped conv (``impl='padded'``, chosen by ``'auto'``; module docstring).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        groups (int): number of groups. Default 1.
        bias (bool): Default False.
        split (str): ``'equal'`` (default) or ``'exponential'``.
        impl (str): ``'auto'`` (default), ``'split'`` (one conv per group, as the official code
            and timm) or ``'padded'`` (one grouped conv; needs equal splits).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1,
                 bias: bool = False, split: str = 'equal', impl: str = 'auto'):
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f'GroupedPointwiseConv2d: groups={groups!r} must be an integer >= 1')
        if groups > min(in_channels, out_channels):
            raise ValueError(f'GroupedPointwiseConv2d: {groups} groups for {in_channels} -> '
                             f'{out_channels} channels: at most {min(in_channels, out_channels)}')
        super().__init__(in_channels, out_channels, [1] * groups, depthwise=False, bias=bias,
                         split=split, impl=impl)


def mix_depthwise_conv(in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=0,
                       dilation=1, groups=1, bias=True, kernels: Sequence[int] = (3, 5, 7),
                       split: str = 'equal', impl: str = 'auto') -> nn.Module:
    """Drop-in replacement of vanilla depthwise convs, for mmcv's ``conv_cfg``.

    The paper's MobileNet experiments (Sec. 4, e.g. "MobileNetV2 + mixconv357" on COCO with
    SSDLite) swap every depthwise 3x3 for a MixConv with kernels 3, 5, 7. With
    ``conv_cfg=dict(type='MixDepthwiseConv', kernels=(3, 5, 7))`` on a backbone built from
    ``ConvModule`` (mmdet's ``MobileNetV2``), each depthwise conv (``groups == in_channels ==
    out_channels > 1``) becomes :class:`MixConv2d` with the same stride and dilation; every
    other conv stays an ``nn.Conv2d`` with the given arguments.
    """
    if groups > 1 and groups == in_channels == out_channels:
        return MixConv2d(in_channels, in_channels, list(kernels), stride=stride,
                         dilation=dilation, bias=bias, split=split, impl=impl)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                     dilation=dilation, groups=groups, bias=bias)


MODELS.register_module('MixDepthwiseConv', module=mix_depthwise_conv)
