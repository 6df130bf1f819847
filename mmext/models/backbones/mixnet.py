"""MixNet-S/M/L (Tan & Le, "MixConv: Mixed Depthwise Convolutional Kernels", BMVC 2019,
arXiv:1907.09595, Sec. 5).

The block lists are the searched architectures of the paper's MixNet-S / MixNet-M figure, as
written in the official code (tensorflow/tpu ``mnasnet/mixnet/mixnet_builder.py``, block
strings ``r1_k3.5.7_a1.1_p1.1_s22_e6_i24_o32...``) and timm's ``mixnet_s/m/l``. MixNet-L is
MixNet-M at width 1.3 (channels only, rounded to multiples of 8 as the official
``round_filters``; repeats and the 1536-channel head unchanged). Paper figures (ImageNet table):

=========  ======  ==========  =====
model      params  FLOPs @224  top-1
=========  ======  ==========  =====
MixNet-S   4.1 M   256 M       75.8
MixNet-M   5.0 M   360 M       77.0
MixNet-L   7.3 M   565 M       78.9
=========  ======  ==========  =====

Each block is a MixConv inverted bottleneck: [grouped 1x1 expansion + BN + act] -> MixConv
(depthwise, one kernel per channel group) + BN + act -> [squeeze-excitation on the expanded
features, reduced to ``int(block input channels * se_ratio)``] -> grouped 1x1 projection + BN ->
[drop path + identity when stride 1 and the width is kept]. ReLU in the stem, the first two
stages and the head; swish from stride 8 on (official ``_sw`` blocks). BN momentum 0.01 / eps 1e-3
as the official code (TF momentum 0.99).

Outputs (``out_indices``, ResNet's convention): index 0, 1, 2, 3 = strides 4, 8, 16, 32 with

=====  ===================
arch   channels
=====  ===================
S      24, 40, 120, 200
M      32, 40, 120, 200
L      40, 56, 160, 264
=====  ===================

With ``num_classes > 0`` the network ends with the ImageNet head (1x1 conv to 1536 + BN + ReLU,
global average pool, dropout, linear) and returns logits: that is the model the paper counts.

Loading timm weights: :func:`convert_timm_mixnet` maps a timm ``mixnet_s/m/l`` or
``tf_mixnet_s/m/l`` state dict onto this module's keys; :func:`timm_mixnet_backbone_args` gives
the backbone arguments each needs. timm's ``mixnet_*`` pad symmetrically as PyTorch does and
were trained with BN eps 1e-5; its ``tf_mixnet_*`` (ported from the official TF checkpoints)
pad as TF 'SAME' -- asymmetric on the stride-2 convs, ``tf_padding=True`` here -- with eps 1e-3.
"""
import re
import warnings
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath

from ...registry import MODELS
from .base import (FreezableBackbone, check_frozen_stages, check_out_indices,
                   check_positive_int, resolve_arch)
from ..layers.mixconv import GroupedPointwiseConv2d, MixConv2d
from ..layers.same_padding import convert_to_same_padding


class BlockDef(NamedTuple):
    repeats: int
    kernels: Tuple[int, ...]  # depthwise MixConv kernels, one per channel group
    expand_groups: int  # groups of the 1x1 expansion ("a1.1" = 2 groups)
    project_groups: int  # groups of the 1x1 projection ("p1.1" = 2 groups)
    stride: int  # of the first repeat
    expand_ratio: int
    out_channels: int  # before the width multiplier
    se_ratio: float  # of the block's input channels; 0 = no SE
    act: str  # 'relu' or 'swish'


def _stages(rows):
    return [[BlockDef(*r) for r in stage] for stage in rows]


# Official mixnet_builder.py block strings, grouped into the stages timm uses (so block indices
# match timm's `blocks.<stage>.<block>`). Columns as BlockDef.
MIXNET_S_BLOCKS = _stages([
    [(1, (3, ), 1, 1, 1, 1, 16, 0.0, 'relu')],  # stride 2
    [(1, (3, ), 2, 2, 2, 6, 24, 0.0, 'relu'),  # stride 4
     (1, (3, ), 2, 2, 1, 3, 24, 0.0, 'relu')],
    [(1, (3, 5, 7), 1, 1, 2, 6, 40, 0.5, 'swish'),  # stride 8
     (3, (3, 5), 2, 2, 1, 6, 40, 0.5, 'swish')],
    [(1, (3, 5, 7), 1, 2, 2, 6, 80, 0.25, 'swish'),  # stride 16
     (2, (3, 5), 1, 2, 1, 6, 80, 0.25, 'swish')],
    [(1, (3, 5, 7), 2, 2, 1, 6, 120, 0.5, 'swish'),  # stride 16
     (2, (3, 5, 7, 9), 2, 2, 1, 3, 120, 0.5, 'swish')],
    [(1, (3, 5, 7, 9, 11), 1, 1, 2, 6, 200, 0.5, 'swish'),  # stride 32
     (2, (3, 5, 7, 9), 1, 2, 1, 6, 200, 0.5, 'swish')],
])
MIXNET_M_BLOCKS = _stages([
    [(1, (3, ), 1, 1, 1, 1, 24, 0.0, 'relu')],
    [(1, (3, 5, 7), 2, 2, 2, 6, 32, 0.0, 'relu'),
     (1, (3, ), 2, 2, 1, 3, 32, 0.0, 'relu')],
    [(1, (3, 5, 7, 9), 1, 1, 2, 6, 40, 0.5, 'swish'),
     (3, (3, 5), 2, 2, 1, 6, 40, 0.5, 'swish')],
    [(1, (3, 5, 7), 1, 1, 2, 6, 80, 0.25, 'swish'),
     (3, (3, 5, 7, 9), 2, 2, 1, 6, 80, 0.25, 'swish')],
    [(1, (3, ), 1, 1, 1, 6, 120, 0.5, 'swish'),
     (3, (3, 5, 7, 9), 2, 2, 1, 3, 120, 0.5, 'swish')],
    [(1, (3, 5, 7, 9), 1, 1, 2, 6, 200, 0.5, 'swish'),
     (3, (3, 5, 7, 9), 1, 2, 1, 6, 200, 0.5, 'swish')],
])

# stem width, block list, width multiplier, classifier dropout (official GlobalParams)
ARCH_SETTINGS = {
    'S': dict(stem=16, blocks=MIXNET_S_BLOCKS, width=1.0, dropout=0.2),
    'M': dict(stem=24, blocks=MIXNET_M_BLOCKS, width=1.0, dropout=0.25),
    'L': dict(stem=24, blocks=MIXNET_M_BLOCKS, width=1.3, dropout=0.25),
}
HEAD_CHANNELS = 1536  # official feature_size; not scaled by the width multiplier

# Official initialisers (tensorflow/tpu mnasnet/mixnet/mixnet_model.py; timm _init_weight_goog):
# conv_kernel_initializer -- normal, std sqrt(2 / fan_out), fan_out = k * k * out_channels /
# groups (a depth-wise kernel's fan-out is k * k); dense_kernel_initializer -- uniform in
# +-1 / sqrt(out_features); biases 0; BN weight 1, bias 0.
OFFICIAL_INIT_CFG = [
    dict(type='VarianceScaling', layer='Conv2d', scale=2.0, mode='fan_out',
         distribution='normal'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
    dict(type='VarianceScaling', layer='Linear', scale=1.0 / 3, mode='fan_out',
         distribution='uniform'),
]
# mmext's init before it followed the official one: mmengine's Kaiming fan-out counts
# k * k * out_channels for a depth-wise conv too, so those start sqrt(C) times too small
KAIMING_INIT_CFG = [
    dict(type='Kaiming', layer='Conv2d', mode='fan_out'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
    dict(type='Normal', std=0.01, layer='Linear'),
]
ACTS = {'relu': dict(type='ReLU'), 'swish': dict(type='SiLU')}


def round_channels(channels: float, width: float = 1.0, divisor: int = 8) -> int:
    """The official ``round_filters``: scale, round to a multiple of ``divisor`` and never go
    more than 10 % below the scaled value."""
    if width == 1.0:
        return int(channels)
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return rounded


def _conv_norm_act(conv, channels, norm_cfg, act_cfg):
    layers = [('conv', conv), ('bn', build_norm_layer(norm_cfg, channels)[1])]
    if act_cfg is not None:
        layers.append(('act', build_activation_layer(act_cfg)))
    return nn.Sequential(OrderedDict(layers))


class SqueezeExcite(nn.Module):
    """SE of MnasNet/MixNet: global pool -> 1x1 conv (bias) -> act -> 1x1 conv -> sigmoid gate."""

    def __init__(self, channels, reduced, act_cfg):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = build_activation_layer(act_cfg)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        s = self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(s)


class MixBlock(nn.Module):
    """MixNet's inverted bottleneck (official ``MixnetBlock``); no expansion when the ratio is 1."""

    def __init__(self, in_channels, out_channels, kernels, stride=1, expand_ratio=1,
                 expand_groups=1, project_groups=1, se_ratio=0.0, act_cfg=dict(type='ReLU'),
                 norm_cfg=dict(type='BN'), drop_path_rate=0.0):
        super().__init__()
        mid = in_channels * expand_ratio
        self.expand = None
        if expand_ratio != 1:
            self.expand = _conv_norm_act(
                GroupedPointwiseConv2d(in_channels, mid, expand_groups), mid, norm_cfg, act_cfg)
        self.dw = _conv_norm_act(MixConv2d(mid, mid, kernels, stride=stride), mid, norm_cfg,
                                 act_cfg)
        self.se = None
        if se_ratio > 0:
            self.se = SqueezeExcite(mid, max(1, int(in_channels * se_ratio)), act_cfg)
        self.project = _conv_norm_act(
            GroupedPointwiseConv2d(mid, out_channels, project_groups), out_channels, norm_cfg,
            None)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, x):
        out = x if self.expand is None else self.expand(x)
        out = self.dw(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        if self.has_skip:
            out = self.drop_path(out) + x
        return out


@MODELS.register_module()
class MixNet(FreezableBackbone):
    """MixNet backbone (S, M, L) with an optional ImageNet classification head.

    Args:
        arch (str): ``'S'``, ``'M'`` or ``'L'`` (paper Sec. 5; L = M at width 1.3),
            case-insensitive, optionally prefixed ``'mixnet-'`` (``'mixnet-s'``).
        in_channels (int): input image channels. Default 3.
        out_indices (Sequence[int]): features to return, indices into strides (4, 8, 16, 32).
            Default (0, 1, 2, 3). Unused (but still checked) when ``num_classes > 0``.
        num_classes (int): 0 (default) for a detection backbone; > 0 adds the ImageNet head
            (1x1 conv to 1536, BN, ReLU, average pool, dropout, linear) and returns logits.
        drop_path_rate (float): stochastic depth; block ``i`` of ``n`` drops with
            ``rate * i / n`` (official ``drop_connect_rate``). Default 0.
        dropout (float, optional): classifier dropout; default the official 0.2 (S) / 0.25 (M, L).
        norm_cfg (dict): default BN with momentum 0.01, eps 1e-3 (official TF values); timm's
            ``mixnet_*`` checkpoints were trained with eps 1e-5.
        norm_eval (bool): keep BN layers in eval mode while training. Default False.
        frozen_stages (int): -1 (default) freezes nothing; ``k`` in 0..4 freezes the stem and
            every block up to stride ``2**(k+1)`` (0: stride 2, 1: up to the stride-4 output...).
        channels_last (bool): run the network in channels-last memory format (the outputs are
            channels-last too; values are unchanged). On CPU, timm's MixConv layers run
            1.0x-2.2x faster channels-last than NCHW (oneDNN's depthwise kernels are
            NHWC-native), mmext's less so since its NCHW backward is faster; mmext's whole
            MixNet-M training step is 1.06x-1.14x faster channels-last, timm's 1.17x-1.26x
            (``benchmarks/mixconv.py --network-only``; the model card has the table).
            Default False.
        tf_padding (bool): strided convs pad as TF 'SAME' (asymmetric: the official TF
            weights and timm's ``tf_mixnet_*``). Default False (PyTorch's symmetric padding,
            timm's ``mixnet_*``).
        init_cfg: mmengine init config; default the official one (``OFFICIAL_INIT_CFG``:
            convs normal with std ``sqrt(2 / fan_out)``, ``fan_out = k * k * out / groups``;
            linear uniform in ``+-1 / sqrt(out)``; BN 1 / 0). ``KAIMING_INIT_CFG`` is mmext's
            earlier init (depth-wise convs about ``sqrt(C)`` times smaller).

    Attributes:
        out_channels (list[int]): channels of the returned features.
        out_strides (list[int]): their strides.
    """
    arch_settings = ARCH_SETTINGS
    output_strides = (4, 8, 16, 32)

    def __init__(self,
                 arch: str = 'S',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 num_classes: int = 0,
                 drop_path_rate: float = 0.0,
                 dropout: Optional[float] = None,
                 norm_cfg: dict = dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True),
                 norm_eval: bool = False,
                 frozen_stages: int = -1,
                 channels_last: bool = False,
                 tf_padding: bool = False,
                 init_cfg=None):
        if init_cfg is None:
            init_cfg = [dict(c) for c in OFFICIAL_INIT_CFG]
        super().__init__(init_cfg)
        key = resolve_arch('MixNet', arch, self.arch_settings, 'mixnet')
        check_positive_int('MixNet', 'in_channels', in_channels)
        check_positive_int('MixNet', 'num_classes', num_classes, minimum=0)
        # checked even with the ImageNet head (where it is unused): a bad value is a typo
        out_indices = check_out_indices('MixNet', out_indices, len(self.output_strides),
                                        'strides 4, 8, 16, 32')
        if dropout is not None and not 0.0 <= dropout < 1.0:
            raise ValueError(f'MixNet: dropout={dropout} must be in [0, 1)')
        check_frozen_stages('MixNet', frozen_stages, 4)
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f'MixNet: drop_path_rate={drop_path_rate} must be in [0, 1)')
        setting = self.arch_settings[key]
        self.arch = key
        self.out_indices = out_indices
        self.num_classes = num_classes
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        self.channels_last = channels_last
        width = setting['width']

        stem = round_channels(setting['stem'], width)
        self.stem = ConvModule(in_channels, stem, 3, stride=2, padding=1, bias=False,
                               norm_cfg=norm_cfg, act_cfg=ACTS['relu'])
        blocks = [b for stage in setting['blocks'] for b in stage for _ in range(b.repeats)]
        n, i = len(blocks), 0
        c, stride = stem, 2
        self.stages = nn.ModuleList()
        self.stage_strides = []  # output stride of each stage
        level_stage = {}  # output stride -> index of the last stage at that stride
        for stage_defs in setting['blocks']:
            stage = []
            for b in stage_defs:
                out = round_channels(b.out_channels, width)
                for r in range(b.repeats):
                    s = b.stride if r == 0 else 1
                    stage.append(MixBlock(c, out, b.kernels, s, b.expand_ratio, b.expand_groups,
                                          b.project_groups, b.se_ratio, ACTS[b.act], norm_cfg,
                                          drop_path_rate * i / n))
                    stride *= s
                    c = out
                    i += 1
            self.stages.append(nn.Sequential(*stage))
            self.stage_strides.append(stride)
            level_stage[stride] = len(self.stages) - 1
        self._feature_stage = [level_stage[s] for s in self.output_strides]
        self._stage_channels = [s[-1].project.bn.num_features for s in self.stages]
        self.out_strides = [self.output_strides[i] for i in out_indices]
        self.out_channels = [self._stage_channels[self._feature_stage[i]] for i in out_indices]

        if num_classes > 0:
            self.head = ConvModule(c, HEAD_CHANNELS, 1, bias=False, norm_cfg=norm_cfg,
                                   act_cfg=ACTS['relu'])
            self.dropout = nn.Dropout(setting['dropout'] if dropout is None else dropout)
            self.fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self.tf_padding = tf_padding
        if tf_padding:
            convert_to_same_padding(self)
        self._freeze_stages()

    def forward(self, x):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        if self.num_classes > 0:
            for stage in self.stages:
                x = stage(x)
            x = self.head(x).mean((2, 3))
            return self.fc(self.dropout(x))
        wanted = {self._feature_stage[i]: i for i in self.out_indices}
        last = max(wanted)
        feats = {}
        for j, stage in enumerate(self.stages[:last + 1]):
            x = stage(x)
            if j in wanted:
                feats[wanted[j]] = x
        return tuple(feats[i] for i in self.out_indices)

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        limit = 2**(self.frozen_stages + 1)
        return [self.stem] + [s for s, st in zip(self.stages, self.stage_strides) if st <= limit]


# timm block-internal names -> ours. timm's InvertedResidual (a block with conv_pwl) and its
# DepthwiseSeparableConv (the first, unexpanded block) number their BNs differently.
_TIMM_IR = {'conv_pw': 'expand.conv', 'bn1': 'expand.bn', 'conv_dw': 'dw.conv', 'bn2': 'dw.bn',
            'se.conv_reduce': 'se.reduce', 'se.conv_expand': 'se.expand',
            'conv_pwl': 'project.conv', 'bn3': 'project.bn'}
_TIMM_DS = {'conv_dw': 'dw.conv', 'bn1': 'dw.bn', 'conv_pw': 'project.conv', 'bn2': 'project.bn'}
_TIMM_TOP = {'conv_stem': 'stem.conv', 'bn1': 'stem.bn', 'conv_head': 'head.conv',
             'bn2': 'head.bn', 'classifier': 'fc'}


def timm_mixnet_backbone_args(model_name: str) -> dict:
    """:class:`MixNet` arguments that reproduce timm model ``model_name``'s outputs.

    ``mixnet_s/m/l``: PyTorch padding, BN eps 1e-5 (timm's training); ``tf_mixnet_s/m/l``: TF
    'SAME' padding, BN eps 1e-3 (the official TF models). Raises ValueError for other names.
    """
    m = re.fullmatch(r'(tf_)?mixnet_([sml])', str(model_name))
    if not m:
        raise ValueError(f'timm_mixnet_backbone_args: {model_name!r} is not one of mixnet_s, '
                         f'mixnet_m, mixnet_l, tf_mixnet_s, tf_mixnet_m, tf_mixnet_l '
                         f'(mixnet_xl and others have no mmext architecture)')
    tf = bool(m.group(1))
    return dict(arch=m.group(2).upper(), tf_padding=tf,
                norm_cfg=dict(type='BN', momentum=0.01, eps=1e-3 if tf else 1e-5,
                              requires_grad=True))


def check_timm_mixnet_backbone(model_name: str, backbone: 'MixNet'):
    """Raise ValueError if ``backbone``'s padding or BN eps do not match timm ``model_name``."""
    want = timm_mixnet_backbone_args(model_name)
    bn = next(m for m in backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    problems = []
    if backbone.arch != want['arch']:
        problems.append(f"arch={backbone.arch!r} (needs {want['arch']!r})")
    if backbone.tf_padding != want['tf_padding']:
        problems.append(f"tf_padding={backbone.tf_padding} (needs {want['tf_padding']})")
    if abs(bn.eps - want['norm_cfg']['eps']) > 1e-12:
        problems.append(f"BN eps={bn.eps:g} (needs {want['norm_cfg']['eps']:g})")
    if problems:
        raise ValueError(f'MixNet built with {", ".join(problems)}: timm {model_name} weights '
                         f'would give other outputs; use timm_mixnet_backbone_args('
                         f'{model_name!r}) = {want}')


def convert_timm_mixnet(state_dict: Dict[str, torch.Tensor],
                        model_name: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Map a timm ``mixnet_s/m/l`` / ``tf_mixnet_s/m/l`` state dict onto :class:`MixNet` keys.

    The keys of ``mixnet_*`` and ``tf_mixnet_*`` are the same but their models are not (padding,
    BN eps): build the receiving MixNet with ``timm_mixnet_backbone_args(model_name)``. Without
    ``model_name`` this warns, since a ``tf_`` state dict in a PyTorch-padded model gives logits
    about 20 % off.

    * ``conv_stem``/``bn1`` -> ``stem.conv``/``stem.bn``; ``conv_head``/``bn2`` ->
      ``head.conv``/``head.bn``; ``classifier`` -> ``fc``;
    * ``blocks.<s>.<b>.<name>`` -> ``stages.<s>.<b>.<ours>`` with ``<name>`` -> ``<ours>`` from
      ``_TIMM_IR`` (blocks with ``conv_pwl``) or ``_TIMM_DS`` (the unexpanded first block);
    * conv weights: timm's ``MixedConv2d`` ``<conv>.<i>.weight`` and its plain single-kernel
      ``<conv>.weight`` both become ``<conv>.convs.<i>.weight`` (``i = 0`` for the plain one).
    """
    if model_name is None:
        warnings.warn('convert_timm_mixnet: no model_name given, so the padding and BN eps '
                      'cannot be checked: timm mixnet_* needs MixNet(tf_padding=False, BN eps '
                      '1e-5), tf_mixnet_* needs tf_padding=True and eps 1e-3 '
                      '(timm_mixnet_backbone_args)')
    else:
        timm_mixnet_backbone_args(model_name)  # validates the name
    ir_blocks = {m.group(1) for k in state_dict
                 for m in [re.match(r'(blocks\.\d+\.\d+)\.conv_pwl\.', k)] if m}
    out = OrderedDict()
    for key, value in state_dict.items():
        m = re.match(r'(blocks)\.(\d+)\.(\d+)\.(.+)$', key)
        if m:
            prefix = f'blocks.{m.group(2)}.{m.group(3)}'
            table = _TIMM_IR if prefix in ir_blocks else _TIMM_DS
            rest = m.group(4)
            base = f'stages.{m.group(2)}.{m.group(3)}.'
        else:
            table, rest, base = _TIMM_TOP, key, ''
        name = next((n for n in sorted(table, key=len, reverse=True)
                     if rest.startswith(n + '.')), None)
        if name is None:
            raise KeyError(f'convert_timm_mixnet: no mapping for timm key {key!r}')
        ours, tail = table[name], rest[len(name) + 1:]
        if ours.endswith('.conv') and ours not in ('stem.conv', 'head.conv'):
            # MixConv2d / GroupedPointwiseConv2d keep one nn.Conv2d per group
            tail = f'convs.{tail}' if re.match(r'\d+\.', tail) else f'convs.0.{tail}'
        out[base + ours + '.' + tail] = value
    return out


def mixnet_feature_channels(arch: str) -> List[int]:
    """Channels at strides 4, 8, 16, 32 (for necks), without building the model."""
    setting = ARCH_SETTINGS[resolve_arch('mixnet_feature_channels', arch, ARCH_SETTINGS,
                                         'mixnet')]
    chans, stride, last = {}, 2, None
    for stage in setting['blocks']:
        for b in stage:
            stride *= b.stride
            last = round_channels(b.out_channels, setting['width'])
        chans[stride] = last
    return [chans[s] for s in MixNet.output_strides]
