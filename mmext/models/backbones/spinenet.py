"""SpineNet: scale-permuted backbones (Du et al., "SpineNet: Learning Scale-Permuted Backbone
for Recognition and Localization", CVPR 2020, arXiv:1912.05027).

The block list (SpineNet-49, found by NAS; paper Fig. 4 / official ``SPINENET_BLOCK_SPECS``)
and the scaling table (paper Table 1: endpoint filters, filter scale, resample alpha, block
repeats) are data; the five variants come from the table. Structure follows the official
TensorFlow implementation (tensorflow/tpu ``modeling/architecture/spinenet.py``):

* stem: 7x7/2 conv 64 -> BN -> act -> 3x3/2 max-pool -> two level-2 bottleneck groups;
* each later block fuses two earlier blocks: each parent is resampled (1x1 conv to
  ``alpha * C_parent`` + BN + act; down: 3x3/2 conv + BN + act, then one max-pool for ratios
  above 2; up: nearest; then 1x1 conv + BN to the block's input width), the two are summed,
  output blocks also add every earlier *unused* block of the same level and width, then
  act -> the block group;
* endpoints: 1x1 conv to ``endpoints_num_filters`` + BN + act on the level 3-7 output blocks.

TensorFlow-trained weights need TensorFlow's layer conventions (``tf_compat``):

* ``'model_garden'`` (TF Model Garden, ``official/vision/modeling/backbones/spinenet.py``, the
  TF2 release whose checkpoints ``tools/model_converters/spinenet_tf2mmext.py`` reads): every
  stride-2 conv and 3x3/2 max-pool pads as TF 'same' (asymmetric on even sizes), a ratio-``2**k``
  downsample is the 3x3/2 conv then ``k - 1`` 3x3/2 'same' max-pools, BN eps 1e-3 and momentum
  0.99 (PyTorch momentum 0.01);
* ``'tpu'`` (tensorflow/tpu ``modeling/architecture/spinenet.py``, TF1): convs pad as PyTorch
  (``conv2d_fixed_padding``), the max-pools -- stem 3x3/2 and the single resample pool -- pad as
  TF 'SAME'; BN eps 1e-4, momentum 0.997 (PyTorch 0.003);
* ``None`` (default): PyTorch symmetric padding throughout, one pool per downsample as
  tensorflow/tpu, BN as ``norm_cfg`` says -- for training from scratch.

Outputs: a tuple of features for ``out_levels`` (default levels 3-7: strides 8, 16, 32, 64,
128), each with ``endpoints_num_filters`` channels -- 128 for 49S, 256 for 49/96/143, 512 for
190 -- so RetinaNet/Mask R-CNN heads attach with no FPN (``SpineNet.out_channels``).
"""
import re
from typing import NamedTuple, Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer
from mmengine.logging import print_log

from ...registry import MODELS
from .base import FreezableBackbone, resolve_arch
from ..layers.res_blocks import RES_BLOCKS, res_block_group
from ..layers.same_padding import MaxPool2dSame, conv_module_same


class BlockSpec(NamedTuple):
    level: int
    block: str
    inputs: Tuple[int, int]  # indices into the growing list of blocks (0, 1 = stem blocks)
    is_output: bool


# (level, block, (input0, input1), is_output) -- SpineNet-49's permutation (paper Fig. 4)
SPINENET_BLOCK_SPECS = [BlockSpec(*s) for s in [
    (2, 'bottleneck', (0, 1), False),
    (4, 'residual', (0, 1), False),
    (3, 'bottleneck', (2, 3), False),
    (4, 'bottleneck', (2, 4), False),
    (6, 'residual', (3, 5), False),
    (4, 'bottleneck', (3, 5), False),
    (5, 'residual', (6, 7), False),
    (7, 'residual', (6, 8), False),
    (5, 'bottleneck', (8, 9), False),
    (5, 'bottleneck', (8, 10), False),
    (4, 'bottleneck', (5, 10), True),
    (3, 'bottleneck', (4, 10), True),
    (5, 'bottleneck', (7, 12), True),
    (7, 'bottleneck', (5, 14), True),
    (6, 'bottleneck', (12, 14), True),
]]

# Base filters per level before `filter_scale` (official FILTER_SIZE_MAP)
FILTER_SIZE_MAP = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}

# Paper Table 1 (and the official SCALING_MAP)
SCALING_MAP = {
    '49S': dict(endpoints_num_filters=128, filter_scale=0.65, resample_alpha=0.5, block_repeats=1),
    '49': dict(endpoints_num_filters=256, filter_scale=1.0, resample_alpha=0.5, block_repeats=1),
    '96': dict(endpoints_num_filters=256, filter_scale=1.0, resample_alpha=0.5, block_repeats=2),
    '143': dict(endpoints_num_filters=256, filter_scale=1.0, resample_alpha=1.0, block_repeats=3),
    '190': dict(endpoints_num_filters=512, filter_scale=1.3, resample_alpha=1.0, block_repeats=4),
}

# Per TensorFlow release: (stride-2 convs pad as TF 'same', pool padding, ratio>2 downsample,
# BN eps, PyTorch BN momentum = 1 - Keras momentum)
TF_CONVENTIONS = {
    None: dict(same_conv=False, same_pool=False, pool_chain=False),
    'model_garden': dict(same_conv=True, same_pool=True, pool_chain=True, eps=1e-3,
                         momentum=0.01),
    'tpu': dict(same_conv=False, same_pool=True, pool_chain=False, eps=1e-4, momentum=0.003),
}

STEM_LEVEL = 2
NUM_STEM_BLOCKS = 2
MAX_LEVEL = 7

# Official kernel initialiser: tensorflow/tpu nn_ops.conv2d_fixed_padding uses
# tf.variance_scaling_initializer() and Model Garden's SpineNet kernel_initializer='VarianceScaling'
# -- both scale 1, fan-in, truncated normal (std sqrt(1 / fan_in) after truncation).
OFFICIAL_INIT_CFG = [
    dict(type='VarianceScaling', layer='Conv2d', scale=1.0, mode='fan_in',
         distribution='truncated_normal'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]
# mmext's init before it followed the official one (Kaiming normal, fan-out, ReLU gain)
KAIMING_INIT_CFG = [
    dict(type='Kaiming', layer='Conv2d'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


class Resample(nn.Module):
    """Brings a parent block's output to a target block's level and input width."""

    def __init__(self, in_channels, in_level, in_expansion, out_channels, out_level, alpha,
                 norm_cfg, act_cfg, convention=TF_CONVENTIONS[None]):
        super().__init__()
        # the official code scales the parent's *base* filters (bottleneck output / 4)
        mid = int(in_channels / in_expansion * alpha)
        self.reduce = ConvModule(in_channels, mid, 1, bias=False, norm_cfg=norm_cfg,
                                 act_cfg=act_cfg)
        self.down = nn.Identity()
        self.up_scale = 1
        ratio = 2**(out_level - in_level) if out_level > in_level else 1
        if ratio > 1:
            conv = conv_module_same if convention['same_conv'] else ConvModule
            layers = [conv(mid, mid, 3, stride=2, padding=1, bias=False,
                           norm_cfg=norm_cfg, act_cfg=act_cfg)]
            if ratio > 2 and convention['pool_chain']:
                # Model Garden: halve with 3x3/2 'same' pools until the level is reached
                layers += [MaxPool2dSame(3, 2) for _ in range(ratio.bit_length() - 2)]
            elif ratio > 2:
                # tensorflow/tpu: one pool, 3x3 up to ratio 4, else 5x5, stride ratio / 2
                k = 3 if ratio <= 4 else 5
                layers.append(MaxPool2dSame(k, ratio // 2) if convention['same_pool'] else
                              nn.MaxPool2d(k, stride=ratio // 2, padding=k // 2))
            self.down = nn.Sequential(*layers)
        elif in_level > out_level:
            self.up_scale = 2**(in_level - out_level)
        self.expand = ConvModule(mid, out_channels, 1, bias=False, norm_cfg=norm_cfg,
                                 act_cfg=None)

    def forward(self, x):
        x = self.down(self.reduce(x))
        if self.up_scale > 1:
            x = F.interpolate(x, scale_factor=self.up_scale, mode='nearest')
        return self.expand(x)


@MODELS.register_module()
class SpineNet(FreezableBackbone):
    """SpineNet backbone (49S, 49, 96, 143, 190).

    Args:
        arch (str): one of ``'49S', '49', '96', '143', '190'`` (paper Table 1).
        in_channels (int): input image channels. Default 3.
        out_levels (Sequence[int]): levels to return, a subset of 3..7 (stride ``2**level``).
            Default (3, 4, 5, 6, 7).
        act_cfg (dict): activation; the paper uses swish (``dict(type='SiLU')``, default), the
            official model zoo also has ReLU variants (``dict(type='ReLU')``).
        norm_cfg (dict): norm layer; use ``SyncBN`` on GPUs as the paper (mmext's tools turn it
            into BN on CPU). Default ``dict(type='BN')``.
        norm_eval (bool): keep BN layers in eval mode (frozen statistics) while training.
        frozen_stages (int): -1 freezes nothing; 0 freezes the stem conv; 1 also freezes the
            two level-2 stem blocks. The scale-permuted blocks have no stages to freeze.
        drop_path_rate (float): stochastic depth of the scale-permuted blocks; block ``i`` of
            ``n`` drops with ``rate * (i + 1) / n`` as the official code (paper: 0.2).
        block_specs (list, optional): a custom permutation; default SpineNet-49's.
        tf_compat (str, optional): the TensorFlow release whose layer conventions (padding,
            downsampling pools, BN eps/momentum) to reproduce, for its trained weights:
            ``'model_garden'`` or ``'tpu'`` (see the module docstring); ``None`` (default) is
            PyTorch's. BN ``eps``/``momentum`` come from the release unless ``norm_cfg`` sets
            them.
        init_cfg: mmengine init config; default the official one (``OFFICIAL_INIT_CFG``:
            TF variance scaling -- scale 1, fan-in, truncated normal -- on every conv; BN
            weight 1, bias 0). ``KAIMING_INIT_CFG`` is mmext's earlier Kaiming fan-out init.

    Loading: a state dict of a SpineNet with more ``out_levels`` (a full checkpoint) loads
    into one with fewer: the tensors of the blocks and endpoints this one does not build are
    dropped with a logged message; every other key must match as usual.
    """
    arch_settings = SCALING_MAP

    def __init__(self,
                 arch: str = '49',
                 in_channels: int = 3,
                 out_levels: Sequence[int] = (3, 4, 5, 6, 7),
                 act_cfg: dict = dict(type='SiLU'),
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 frozen_stages: int = -1,
                 drop_path_rate: float = 0.0,
                 block_specs=None,
                 tf_compat=None,
                 init_cfg=None):
        if init_cfg is None:
            init_cfg = [dict(c) for c in OFFICIAL_INIT_CFG]
        super().__init__(init_cfg)
        # paper Table 1 names, case-insensitive: '49S', '49s', 'SpineNet-49S'
        arch = resolve_arch('SpineNet', arch, self.arch_settings, 'spinenet')
        out_levels = tuple(out_levels)
        if not out_levels or not set(out_levels) <= set(range(3, MAX_LEVEL + 1)):
            raise ValueError(f'SpineNet: out_levels={out_levels} must be a non-empty subset '
                             f'of (3, 4, 5, 6, 7)')
        if len(set(out_levels)) != len(out_levels):
            raise ValueError(f'SpineNet: out_levels={out_levels} repeats a level; each of '
                             f'3..7 may appear once')
        if frozen_stages not in (-1, 0, 1):
            raise ValueError(f'SpineNet: frozen_stages={frozen_stages} must be -1, 0 or 1')
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f'SpineNet: drop_path_rate={drop_path_rate} must be in [0, 1)')
        if tf_compat not in TF_CONVENTIONS:
            raise ValueError(f'SpineNet: tf_compat={tf_compat!r} is not one of '
                             f'{list(TF_CONVENTIONS)}')
        self.tf_compat = tf_compat
        convention = TF_CONVENTIONS[tf_compat]
        norm_cfg = dict(norm_cfg)
        for key in ('eps', 'momentum'):
            if key in convention:
                norm_cfg.setdefault(key, convention[key])
        self.arch = arch
        setting = self.arch_settings[arch]
        self.out_levels = out_levels
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        self.block_specs = self._check_block_specs(block_specs or SPINENET_BLOCK_SPECS)
        self.endpoints_num_filters = setting['endpoints_num_filters']
        self.out_channels = self.endpoints_num_filters
        scale, alpha, repeats = (setting['filter_scale'], setting['resample_alpha'],
                                 setting['block_repeats'])
        conv_kw = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)

        # stem
        stem_conv = conv_module_same if convention['same_conv'] else ConvModule
        self.stem = nn.Sequential(
            stem_conv(in_channels, 64, 7, stride=2, padding=3, bias=False, **conv_kw),
            MaxPool2dSame(3, 2) if convention['same_pool'] else
            nn.MaxPool2d(3, stride=2, padding=1))
        stem_filters = int(FILTER_SIZE_MAP[STEM_LEVEL] * scale)
        self.stem_blocks = nn.ModuleList()
        channels, levels, kinds = [], [], []
        c = 64
        for _ in range(NUM_STEM_BLOCKS):
            self.stem_blocks.append(res_block_group('bottleneck', c, stem_filters, repeats,
                                                    **conv_kw))
            c = stem_filters * 4
            channels.append(c), levels.append(STEM_LEVEL), kinds.append('bottleneck')

        # scale-permuted network: plan the graph, then build the blocks the outputs need
        plan = self._plan(channels, levels, kinds, scale)
        self.merge_unused = [p['unused'] for p in plan]
        self.output_block = {spec.level: NUM_STEM_BLOCKS + i
                             for i, spec in enumerate(self.block_specs) if spec.is_output}
        missing = [lv for lv in out_levels if lv not in self.output_block]
        if missing:
            raise ValueError(f'SpineNet: the block specs have no output block at levels {missing}')
        needed = self._needed_blocks([self.output_block[lv] for lv in out_levels])
        self.resamples = nn.ModuleList()
        self.blocks = nn.ModuleList()
        n = len(self.block_specs)
        for i, (spec, p) in enumerate(zip(self.block_specs, plan)):
            if NUM_STEM_BLOCKS + i not in needed:
                # feeds no requested output: not built (no dead parameters under DDP)
                self.resamples.append(nn.ModuleList())
                self.blocks.append(nn.Identity())
                continue
            self.resamples.append(nn.ModuleList([
                Resample(channels[j], levels[j], RES_BLOCKS[kinds[j]].expansion, p['in'],
                         spec.level, alpha, norm_cfg, act_cfg, convention)
                for j in spec.inputs]))
            self.blocks.append(res_block_group(spec.block, p['in'], p['filters'], repeats,
                                               drop_path_rate=drop_path_rate * (i + 1) / n,
                                               **conv_kw))
        self.fuse_act = build_activation_layer(act_cfg)
        self.endpoints = nn.ModuleDict({
            str(lv): ConvModule(channels[self.output_block[lv]], self.endpoints_num_filters, 1,
                                bias=False, **conv_kw) for lv in out_levels})
        self._freeze_stages()

    @staticmethod
    def _check_block_specs(specs):
        """Block specs as ``BlockSpec``s, or a ValueError naming the bad one."""
        out = []
        for i, s in enumerate(specs):
            try:
                spec = BlockSpec(*s)
            except TypeError:
                raise ValueError(f'SpineNet: block_specs[{i}]={s!r} is not (level, block, '
                                 f'(input0, input1), is_output)') from None
            if isinstance(spec.level, bool) or spec.level not in FILTER_SIZE_MAP:
                raise ValueError(f'SpineNet: block_specs[{i}] has level {spec.level!r}; '
                                 f'levels are {sorted(FILTER_SIZE_MAP)} (official '
                                 f'FILTER_SIZE_MAP)')
            if len(tuple(spec.inputs)) != 2:
                raise ValueError(f'SpineNet: block_specs[{i}] has inputs {spec.inputs!r}; '
                                 f'each block fuses exactly two earlier blocks')
            out.append(spec._replace(inputs=tuple(spec.inputs), is_output=bool(spec.is_output)))
        if not out:
            raise ValueError('SpineNet: block_specs is empty')
        return out

    def _pruned_prefixes(self):
        """Module names (``resamples.i``, ``blocks.i``, ``endpoints.lv``) a SpineNet with every
        output level has and this one does not build."""
        names = [f'{kind}.{i}' for i, r in enumerate(self.resamples) if len(r) == 0
                 for kind in ('resamples', 'blocks')]
        names += [f'endpoints.{lv}' for lv in sorted(self.output_block)
                  if str(lv) not in self.endpoints]
        return names

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # A full SpineNet's checkpoint into one with fewer out_levels: drop what is not built.
        # Runs before the children load (torch and mmengine both recurse parent first).
        pruned = self._pruned_prefixes()
        if pruned:
            pattern = re.compile(re.escape(prefix) + '(' + '|'.join(map(re.escape, pruned)) +
                                 r')\.')
            dropped = sorted({m.group(1) for k in list(state_dict)
                              for m in [pattern.match(k)] if m})
            keys = [k for k in list(state_dict) if pattern.match(k)]
            for k in keys:
                del state_dict[k]
            if keys:
                print_log(f'SpineNet(out_levels={self.out_levels}): dropped {len(keys)} '
                          f'tensors of {len(dropped)} modules it does not build '
                          f'({", ".join(dropped)})', logger='current')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def _plan(self, channels, levels, kinds, scale):
        """Walk the block list as the official code does: each block's filters and input
        width, and (for output blocks) the earlier blocks nothing reads, which it absorbs.
        Appends every block's channels/level/kind to the given lists."""
        outgoing = [0] * len(channels)
        plan, seen_levels = [], set()
        for i, spec in enumerate(self.block_specs):
            for j in spec.inputs:
                if not 0 <= j < len(channels):
                    raise ValueError(f'SpineNet: block {i} reads block {j}, but only '
                                     f'{len(channels)} blocks exist before it')
                outgoing[j] += 1
            if spec.block not in RES_BLOCKS:
                raise ValueError(f'SpineNet: block type {spec.block!r} not in {list(RES_BLOCKS)}')
            filters = int(FILTER_SIZE_MAP[spec.level] * scale)
            target_in = filters * RES_BLOCKS[spec.block].expansion
            unused = []
            if spec.is_output:
                if spec.level in seen_levels:
                    raise ValueError(f'SpineNet: two output blocks at level {spec.level}')
                seen_levels.add(spec.level)
                for j in range(len(channels)):
                    if outgoing[j] == 0 and levels[j] == spec.level and channels[j] == target_in:
                        unused.append(j)
                        outgoing[j] += 1
            plan.append({'filters': filters, 'in': target_in, 'unused': unused})
            channels.append(target_in), levels.append(spec.level), kinds.append(spec.block)
            outgoing.append(0)
        return plan

    def _needed_blocks(self, outputs):
        """Blocks (indices into stem + permuted blocks) the given output blocks depend on."""
        needed, todo = set(), list(outputs)
        while todo:
            j = todo.pop()
            if j in needed:
                continue
            needed.add(j)
            if j >= NUM_STEM_BLOCKS:
                i = j - NUM_STEM_BLOCKS
                todo.extend(self.block_specs[i].inputs)
                todo.extend(self.merge_unused[i])
        return needed

    def forward(self, x):
        h, w = x.shape[-2:]
        div = 2**MAX_LEVEL
        if h % div or w % div:
            raise ValueError(
                f'SpineNet: input size {h}x{w} is not a multiple of {div}: blocks of levels '
                f'2-7 are fused by exact 2x resampling. Pad the batch, e.g. '
                f'DetDataPreprocessor(pad_size_divisor={div}).')
        x = self.stem(x)
        feats = []
        for group in self.stem_blocks:
            x = group(x)
            feats.append(x)
        for resamples, block, spec, unused in zip(self.resamples, self.blocks,
                                                  self.block_specs, self.merge_unused):
            if len(resamples) == 0:  # pruned: feeds no requested output
                feats.append(None)
                continue
            fused = resamples[0](feats[spec.inputs[0]]) + resamples[1](feats[spec.inputs[1]])
            for j in unused:
                fused = fused + feats[j]
            feats.append(block(self.fuse_act(fused)))
        return tuple(self.endpoints[str(lv)](feats[self.output_block[lv]])
                     for lv in self.out_levels)

    def frozen_modules(self):
        return [self.stem, self.stem_blocks][:self.frozen_stages + 1]
