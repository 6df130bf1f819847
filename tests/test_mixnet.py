"""MixConv and MixNet-S/M/L against the paper (Tan & Le, "MixConv: Mixed Depthwise
Convolutional Kernels", BMVC 2019, arXiv:1907.09595) and the reference implementations.

* Paper figures (the MixConv paper's ImageNet table): params 4.1 / 5.0 / 7.3 M, FLOPs at
  224 of 256 / 360 / 565 M, counted with mmengine (one multiply-add = one FLOP, as the paper).
* Reference: timm's ``mixnet_s/m/l`` built with random weights (no download), its state dict
  mapped by ``convert_timm_mixnet``; outputs equal to 1e-5 in eval mode. timm's BN eps is set
  to mmext's 1e-3 (the official TF value) so that the same numbers go through the same ops.
"""
import math
from glob import glob

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import mmext  # noqa: F401
from mmext.analysis import build_model, count_params
from mmext.models.backbones import MixNet
from mmext.models.backbones.mixnet import convert_timm_mixnet, mixnet_feature_channels
from mmext.models.layers import GroupedPointwiseConv2d, MixConv2d, split_channels
from mmext.models.layers.mixconv import mix_depthwise_conv

timm = pytest.importorskip('timm')

# arch: (paper params M, paper FLOPs M at 224)
PAPER = {'S': (4.1, 256), 'M': (5.0, 360), 'L': (7.3, 565)}
# feature channels at strides 4, 8, 16, 32 (timm's mixnet_s/m/l feature_info)
CHANNELS = {'S': [24, 40, 120, 200], 'M': [32, 40, 120, 200], 'L': [40, 56, 160, 264]}


def flops_and_params(model, size=224):
    from mmengine.analysis import get_model_complexity_info
    with torch.no_grad():
        out = get_model_complexity_info(model, None, inputs=torch.zeros(1, 3, size, size),
                                        show_table=False, show_arch=False)
    return out['flops'], out['params']


def timm_mixnet(arch, **kwargs):
    torch.manual_seed(0)
    model = timm.create_model(f'mixnet_{arch.lower()}', pretrained=False, bn_eps=1e-3,
                              **kwargs).eval()
    # random BN statistics and affine terms, so that a BN mapped to the wrong place shows
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return model


# ---------------------------------------------------------------- MixConv layer


def test_equal_split_gives_the_remainder_to_the_first_group():
    assert split_channels(10, 3) == [4, 3, 3]
    assert split_channels(240, 4) == [60] * 4


def test_exponential_split_halves_per_group_as_paper_section_3_2():
    assert split_channels(32, 4, 'exponential') == [16, 8, 4, 4]


def test_int_kernel_with_groups_gives_the_3_5_7_family():
    assert MixConv2d(16, kernel_size=3, num_groups=4).kernel_size == (3, 5, 7, 9)


@pytest.mark.parametrize('stride, dilation', [(1, 1), (2, 1), (1, 2)])
def test_mixconv_is_per_group_depthwise_convs_concatenated(stride, dilation):
    conv = MixConv2d(10, kernel_size=[3, 5, 7], stride=stride, dilation=dilation)
    x = torch.randn(2, 10, 17, 17)
    parts, start = [], 0
    for c, k, w in zip([4, 3, 3], [3, 5, 7], [m.weight for m in conv.convs]):
        parts.append(F.conv2d(x[:, start:start + c], w, None, stride,
                              dilation * (k - 1) // 2, dilation, groups=c))
        start += c
    torch.testing.assert_close(conv(x), torch.cat(parts, 1))
    assert conv(x).shape[-1] == (17 - 1) // stride + 1  # "same" for every kernel


@pytest.mark.parametrize('stride', [1, 2])
def test_mixconv_equals_timm_mixed_conv2d(stride):
    from timm.layers import MixedConv2d
    ours = MixConv2d(30, kernel_size=[3, 5, 7, 9], stride=stride)
    ref = MixedConv2d(30, 30, [3, 5, 7, 9], stride=stride, depthwise=True)
    ref.load_state_dict({k.replace('convs.', ''): v for k, v in ours.state_dict().items()})
    x = torch.randn(2, 30, 20, 20)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    # and the same gradients, with the default (GEMM weight-gradient) backward on CPU
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn_like(ref(x))
    ours(xa).backward(g)
    ref(xb).backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)
    for i, conv in enumerate(ours.convs):
        torch.testing.assert_close(conv.weight.grad, ref[str(i)].weight.grad, rtol=1e-4,
                                   atol=1e-4)


def test_grouped_pointwise_conv_is_a_grouped_1x1_conv():
    conv = GroupedPointwiseConv2d(16, 96, groups=2)
    ref = nn.Conv2d(16, 96, 1, groups=2, bias=False)
    ref.weight.data = torch.cat([c.weight for c in conv.convs])
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(conv(x), ref(x))


def test_mixconv_keeps_the_memory_format():
    conv = MixConv2d(12, kernel_size=[3, 5])
    x = torch.randn(2, 12, 9, 9)
    xc = x.contiguous(memory_format=torch.channels_last)
    assert conv(xc).is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(xc), conv(x))


def test_mix_depthwise_conv_replaces_only_depthwise_convs_in_mobilenetv2():
    """The paper's MobileNetV2 + mixconv357 swap (its COCO/SSDLite experiment)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    plain = MODELS.build(dict(type='MobileNetV2', out_indices=(4, 7)))
    mixed = MODELS.build(dict(type='MobileNetV2', out_indices=(4, 7),
                              conv_cfg=dict(type='MixDepthwiseConv', kernels=(3, 5, 7))))
    n_dw = sum(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
               for m in plain.modules())
    mixconvs = [m for m in mixed.modules() if isinstance(m, MixConv2d)]
    assert len(mixconvs) == n_dw == 17
    assert all(m.kernel_size == (3, 5, 7) for m in mixconvs)
    assert not any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in mixed.modules()
                   if m not in [c for mc in mixconvs for c in mc.convs])
    feats = mixed(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [96, 1280]
    assert isinstance(mix_depthwise_conv(8, 16, 1), nn.Conv2d)


def test_mixconv_rejects_even_kernels():
    with pytest.raises(ValueError, match=r'odd.*\[4\]'):
        MixConv2d(16, kernel_size=[3, 4])


def test_mixconv_rejects_more_groups_than_channels():
    with pytest.raises(ValueError, match='5 groups for 4 channels'):
        MixConv2d(4, kernel_size=[3, 5, 7, 9, 11])
    with pytest.raises(ValueError, match='3 groups'):
        GroupedPointwiseConv2d(2, 8, groups=3)


def test_mixconv_rejects_bad_shapes_and_splits():
    with pytest.raises(ValueError, match='keeps the channels'):
        MixConv2d(8, 16, [3, 5])
    with pytest.raises(ValueError, match='exponential split'):
        MixConv2d(4, kernel_size=[3, 5, 7, 9], split='exponential')
    with pytest.raises(ValueError, match="not one of \\('equal', 'exponential'\\)"):
        MixConv2d(8, kernel_size=[3, 5], split='log')
    with pytest.raises(ValueError, match='num_groups=2'):
        MixConv2d(8, kernel_size=[3, 5, 7], num_groups=2)


# ---------------------------------------------------------------- MixNet


@pytest.mark.parametrize('arch', ['S', 'M', 'L'])
def test_mixnet_params_and_flops_match_paper_table(arch):
    params, flops = PAPER[arch]
    model = MixNet(arch, num_classes=1000).eval()
    f, p = flops_and_params(model)
    assert count_params(model) == p
    assert p / 1e6 == pytest.approx(params, rel=0.01), f'{arch}: {p / 1e6:.3f} M vs {params} M'
    assert f / 1e6 == pytest.approx(flops, rel=0.03), f'{arch}: {f / 1e6:.1f} M vs {flops} M'


@pytest.mark.parametrize('arch', ['S', 'M', 'L'])
def test_mixnet_equals_timm_with_mapped_weights(arch):
    ref = timm_mixnet(arch)
    ours = MixNet(arch, num_classes=1000).eval()
    ours.load_state_dict(convert_timm_mixnet(ref.state_dict()), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('arch', ['S', 'L'])
def test_backbone_features_equal_timm_features_at_strides_4_to_32(arch):
    ref = timm_mixnet(arch)
    feats_ref = timm.create_model(f'mixnet_{arch.lower()}', pretrained=False, bn_eps=1e-3,
                                  features_only=True, out_indices=(1, 2, 3, 4)).eval()
    feats_ref.load_state_dict({k: v for k, v in ref.state_dict().items()
                               if not k.startswith(('conv_head', 'bn2', 'classifier'))})
    ours = MixNet(arch).eval()
    ours.load_state_dict({k: v for k, v in convert_timm_mixnet(ref.state_dict()).items()
                          if not k.startswith(('head', 'fc'))}, strict=True)
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        for a, b in zip(ours(x), feats_ref(x), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('arch', ['S', 'M', 'L'])
def test_backbone_outputs_strides_and_channels(arch):
    model = MixNet(arch).eval()
    with torch.no_grad():
        feats = model(torch.zeros(1, 3, 128, 128))
    assert [f.shape[1] for f in feats] == CHANNELS[arch] == model.out_channels
    assert [128 // f.shape[-1] for f in feats] == [4, 8, 16, 32] == model.out_strides
    assert mixnet_feature_channels(arch) == CHANNELS[arch]
    sub = MixNet(arch, out_indices=(3, 1))
    assert sub.out_channels == [CHANNELS[arch][3], CHANNELS[arch][1]]
    assert [f.shape[-1] for f in sub(torch.zeros(1, 3, 64, 64))] == [2, 8]


def test_classifier_head_returns_logits():
    model = MixNet('S', num_classes=10).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 10)


def test_channels_last_gives_the_same_features():
    model = MixNet('S').eval()
    fast = MixNet('S', channels_last=True).eval()
    fast.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for a, b in zip(model(x), fast(x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_frozen_stages_and_norm_eval():
    model = MixNet('S', frozen_stages=1, norm_eval=True).train()
    frozen = ['stem', 'stages.0', 'stages.1']
    for name, p in model.named_parameters():
        assert p.requires_grad != name.startswith(tuple(frozen)), name
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    model = MixNet('S', frozen_stages=0).train()
    assert not model.stem.training and not model.stages[0][0].dw.bn.training
    assert model.stages[1][0].dw.bn.training


def test_drop_path_rises_linearly_over_blocks():
    model = MixNet('S', drop_path_rate=0.2).train()
    blocks = [b for s in model.stages for b in s]
    assert len(blocks) == 16  # MixNet-S: 1 + 2 + 4 + 3 + 3 + 3 blocks
    rates = [0.0 if isinstance(b.drop_path, nn.Identity) else b.drop_path.drop_prob
             for b in blocks]
    assert rates == pytest.approx([0.2 * i / 16 for i in range(16)])
    sum(f.sum() for f in model(torch.randn(2, 3, 64, 64))).backward()


def test_unknown_arch_names_the_choices():
    with pytest.raises(ValueError, match=r"arch='XL' is not one of \['S', 'M', 'L'\]"):
        MixNet('XL')


@pytest.mark.parametrize('name', ['S', 's', 'mixnet-s', 'MixNet-S', 'mixnet_s'])
def test_arch_names_are_the_papers_case_insensitively(name):
    assert MixNet(name).arch == 'S'
    assert mixnet_feature_channels(name) == CHANNELS['S']


@pytest.mark.parametrize('out_indices', [(0, 4), (), (-1, )])
def test_out_indices_out_of_range(out_indices):
    with pytest.raises(ValueError, match='out_indices.*strides 4, 8, 16, 32'):
        MixNet('S', out_indices=out_indices)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_classes=10, out_indices=(9, )), r'out_indices=\(9,\) must be .* 0\.\.3'),
    (dict(out_indices=(1, 1)), r'out_indices=\(1, 1\) repeats \[1\]'),
    (dict(num_classes=-1), 'num_classes=-1 must be an integer >= 0'),
    (dict(in_channels=0), 'in_channels=0 must be an integer >= 1'),
    (dict(num_classes=10, dropout=1.5), r'dropout=1\.5 must be in \[0, 1\)'),
])
def test_bad_mixnet_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixNet('S', **kwargs)


@pytest.mark.parametrize('kwargs, match', [
    (dict(stride=0), 'stride=0 must be an integer >= 1'),
    (dict(dilation=0), 'dilation=0 must be an integer >= 1'),
    (dict(stride=1.5), 'stride=1.5 must be an integer >= 1'),
    (dict(num_groups=0, kernel_size=3), 'num_groups=0 must be an integer >= 1'),
    (dict(out_channels=0), 'out_channels=0'),
])
def test_bad_mixconv_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixConv2d(8, **kwargs)
    with pytest.raises(ValueError, match='groups=0 must be an integer >= 1'):
        GroupedPointwiseConv2d(8, 8, groups=0)


def _official_conv_std(conv):
    """tensorflow/tpu mixnet_model.py conv_kernel_initializer: normal, std sqrt(2 / fan_out)
    with fan_out = kh * kw * out_filters of the TF kernel -- per group, since TF builds MixConv
    groups and grouped 1x1s from separate kernels and a depth-wise kernel has out_filters 1
    (timm _init_weight_goog: k * k * out_channels // groups)."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    return math.sqrt(2.0 / fan_out)


def test_default_init_is_the_official_one():
    torch.manual_seed(0)
    ours = MixNet('M', num_classes=1000)
    ours.init_weights()
    ref = timm.create_model('mixnet_m', pretrained=False)  # timm inits as the official code
    ref_params = dict(ref.named_parameters())
    # ours -> timm's parameter names (the converter maps names, so map the names themselves)
    timm_names = convert_timm_mixnet({k: k for k in ref.state_dict()}, 'mixnet_m')
    convs = {n: m for n, m in ours.named_modules() if isinstance(m, nn.Conv2d)}
    # the layer: a 9x9 depth-wise group of 120 channels, official std sqrt(2 / 81)
    dw = convs['stages.3.1.dw.conv.convs.3']
    assert (dw.kernel_size, dw.groups, dw.out_channels) == ((9, 9), 120, 120)
    assert _official_conv_std(dw) == pytest.approx(0.1571, abs=1e-4)
    for name in ['stem.conv', 'stages.3.1.dw.conv.convs.3', 'stages.3.1.dw.conv.convs.0',
                 'stages.3.1.expand.conv.convs.0', 'stages.3.1.se.reduce', 'head.conv']:
        w = convs[name].weight
        want = _official_conv_std(convs[name])
        assert w.std().item() == pytest.approx(want, rel=0.08), name
        got_timm = ref_params[timm_names[name + '.weight']].std().item()
        assert got_timm == pytest.approx(want, rel=0.08), name
    # dense_kernel_initializer: uniform in +-1 / sqrt(out_features)
    limit = 1 / math.sqrt(1000)
    assert ours.fc.weight.abs().max().item() <= limit
    assert ours.fc.weight.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert (ours.fc.bias == 0).all()


def test_kaiming_init_is_kept_as_an_option():
    """mmengine's Kaiming fan-out counts k * k * C for a depth-wise conv: sqrt(120) too small."""
    from mmext.models.backbones.mixnet import KAIMING_INIT_CFG
    torch.manual_seed(0)
    model = MixNet('M', init_cfg=KAIMING_INIT_CFG)
    model.init_weights()
    w = model.stages[3][1].dw.conv.convs[3].weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / (120 * 81)), rel=0.08)  # 0.0144


def test_bad_frozen_stages_and_drop_path():
    with pytest.raises(ValueError, match='frozen_stages=5'):
        MixNet('S', frozen_stages=5)
    with pytest.raises(ValueError, match='drop_path_rate=1.0'):
        MixNet('S', drop_path_rate=1.0)


def test_timm_mapping_rejects_unknown_keys():
    with pytest.raises(KeyError, match='blocks.0.0.aa.weight'):
        convert_timm_mixnet({'blocks.0.0.aa.weight': torch.zeros(1)})


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize('cfg', sorted(glob('configs/mixnet/*.py')))
def test_configs_build_and_run(cfg):
    model = build_model(cfg)
    size = 320 if 'ssdlite' in cfg else 256
    with torch.no_grad():
        outs = model(torch.zeros(1, 3, size, size), mode='tensor')
    assert len(outs) == 2 and all(torch.isfinite(o).all() for o in outs[0])
    if 'ssdlite' in cfg:
        assert any(isinstance(m, MixConv2d) for m in model.backbone.modules())
    else:
        assert isinstance(model.backbone, MixNet)


@pytest.mark.slow
def test_synthetic_retinanet_mixnet_s_trains(tmp_path, python, synthetic_root):
    """The synthetic variant's own schedule (20 epochs, 15-25 min on 2 shared CPU cores):
    the loss falls and the bbox mAP is positive."""
    from conftest import train_config
    losses, bbox_map = train_config(python, 'configs/mixnet/retinanet_mixnet-s_synthetic.py',
                                    tmp_path / 'run')
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.6 * first, f'loss did not fall: {first:.3f} -> {last:.3f}'
    assert bbox_map is not None and bbox_map > 0, 'no positive bbox mAP'
