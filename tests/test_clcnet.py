"""clcNet (Zhang, CVPR 2018, arXiv:1712.06145): interlaced grouped convolution, the CLC block's
channel receptive field, clcNet-A/B complexity, the RetinaNet configs."""
import itertools
import os.path as osp

import pytest
import torch
from mmengine.analysis import FlopAnalyzer

import mmext  # noqa: F401
from mmext.analysis import build_model, count_params, model_complexity
from mmext.models.backbones import CLCNet
from mmext.models.layers import CLCBlock, channel_interlace, clc_full_receptive_field

from conftest import train_config

# Derived by counting the official Torch7 model definition (conv + linear weights; BN affine
# parameters not counted) -- not the paper's table, which we could not retrieve.
DERIVED = {'A': (3.23, 343), 'B': (4.05, 425)}  # params M, MACs M at 224
RETINA = osp.join('configs', 'clcnet', 'retinanet_clcnet-a_fpn_1x_coco.py')
SYNTHETIC = osp.join('configs', 'clcnet', 'retinanet_clcnet-a_fpn_synthetic.py')


@pytest.mark.parametrize('arch', ['A', 'B'])
def test_imagenet_model_params_and_macs_match_official_code(arch):
    params, macs = DERIVED[arch]
    model = CLCNet(arch, num_classes=1000).eval()
    bn = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
             for p in m.parameters())
    assert (count_params(model) - bn) / 1e6 == pytest.approx(params, rel=0.005)
    assert count_params(model) / 1e6 == pytest.approx(params, rel=0.01)  # BN adds < 1 %
    with torch.no_grad():
        fa = FlopAnalyzer(model, (torch.zeros(1, 3, 224, 224),))
        fa.unsupported_ops_warnings(False)
        ops = fa.by_operator()
    assert (ops['conv'] + ops['linear']) / 1e6 == pytest.approx(macs, rel=0.005)


def test_channel_interlace_is_the_official_index():
    c, g = 12, 3
    x = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1)
    y = channel_interlace(x, g).flatten().long().tolist()
    for k, a in itertools.product(range(c // g), range(g)):
        assert y[k * g + a] == a * (c // g) + k


def _connectivity(block, channels):
    """Boolean (out, in) matrix: does output channel o depend on input channel i?"""
    x = torch.randn(1, channels, 5, 5, requires_grad=True)
    out = block(x)
    rows = []
    for o in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[0, o].sum(), x, retain_graph=True)
        rows.append(grad[0].abs().sum(dim=(1, 2)) > 0)
    return torch.stack(rows)


@pytest.mark.parametrize('channels', [8, 12])
def test_channel_receptive_field_is_full_exactly_when_g1_g2_at_most_c(channels):
    """Gradient connectivity of the CLC block: each output channel sees
    min(g1, C/g2) * C/g1 input channels, i.e. all of them iff g1 * g2 <= C."""
    divisors = [d for d in range(1, channels + 1) if channels % d == 0]
    for g1, g2 in itertools.product(divisors, divisors):
        block = CLCBlock(channels, channels, g1=g1, g2=g2, allow_partial_field=True,
                         act_cfg=None).eval()  # no ReLU: zero gradients are structural only
        conn = _connectivity(block, channels)
        field = conn.sum(dim=1)
        full = bool(conn.all())
        assert full == (g1 * g2 <= channels), (g1, g2)
        assert full == clc_full_receptive_field(channels, g1, g2)
        assert field.tolist() == [min(g1, channels // g2) * (channels // g1)] * channels


def test_partial_receptive_field_raises_unless_allowed():
    with pytest.raises(ValueError, match=r'g1=4 \* g2=4 = 16 > in_channels=8'):
        CLCBlock(8, 8, g1=4, g2=4)
    CLCBlock(8, 8, g1=4, g2=4, allow_partial_field=True)
    with pytest.raises(ValueError, match='g1 \\* g2'):
        CLCNet('A', g2=4)  # g1 = C/2, so g1 * g2 = 2C


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=12, out_channels=12, g1=5, g2=1), 'in_channels=12 .* by g1=5'),
    (dict(in_channels=12, out_channels=12, g1=1, g2=5), 'in_channels=12 .* by g2=5'),
    (dict(in_channels=12, out_channels=10, g1=2, g2=4), 'out_channels=10 .* by g2=4'),
])
def test_channels_not_divisible_by_groups_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CLCBlock(**kwargs)


@pytest.mark.parametrize('name', ['A', 'a', 'clcnet-a', 'clcNet-A', 'CLCNet_A'])
def test_arch_names_are_the_papers_case_insensitively(name):
    assert CLCNet(name).stage_blocks == CLCNet.arch_settings['A']


def test_bad_backbone_arguments():
    with pytest.raises(ValueError, match=r"arch='C' is not one of \['A', 'B'\]"):
        CLCNet('C')
    with pytest.raises(ValueError, match=r'out_indices=\(1, 1\) repeats \[1\]'):
        CLCNet(out_indices=(1, 1))
    with pytest.raises(ValueError, match='num_classes=-1 must be an integer >= 0'):
        CLCNet(num_classes=-1)
    with pytest.raises(ValueError, match='in_channels=0 must be an integer >= 1'):
        CLCNet(in_channels=0)
    with pytest.raises(ValueError, match='g2=0 must be an integer >= 1'):
        CLCNet(g2=0)
    with pytest.raises(ValueError, match='group_width=0 must be an integer >= 1'):
        CLCNet(group_width=0)
    with pytest.raises(ValueError, match=r'stage_blocks=\(1, 1, 1\.5, 2\) must be 4 integer'):
        CLCNet(stage_blocks=(1, 1, 1.5, 2))
    with pytest.raises(ValueError, match=r'out_indices=\(4,\) must be a non-empty subset of 0..3'):
        CLCNet(out_indices=(4,))
    with pytest.raises(ValueError, match=r'frozen_stages=5 is not in -1..4'):
        CLCNet(frozen_stages=5)
    with pytest.raises(ValueError, match='group_width=3'):
        CLCNet(group_width=3)


def test_official_blocks_have_two_channels_per_3x3_group():
    model = CLCNet('B')
    blocks = [m for m in model.modules() if isinstance(m, CLCBlock)]
    assert len(blocks) == 1 + 4 + sum(CLCNet.arch_settings['B'])
    for b in blocks:
        assert b.conv3x3.in_channels // b.g1 == 2 and b.g2 == 2


def test_outputs_strides_and_channels():
    model = CLCNet('A', out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 128, 96))
    assert [tuple(o.shape) for o in outs] == [
        (1, 128, 32, 24), (1, 256, 16, 12), (1, 512, 8, 6), (1, 1024, 4, 3)]


def test_frozen_stages_and_norm_eval():
    model = CLCNet('A', frozen_stages=1, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_retinanet_configs_build():
    r = model_complexity(RETINA, (320, 320))
    assert r['params'] > 3.2e6 and r['flops'] > 0
    assert build_model(RETINA.replace('-a_', '-b_')).backbone.stage_blocks == (1, 1, 7, 3)


@pytest.mark.slow
def test_synthetic_retinanet_training_reduces_loss_and_detects(tmp_path, python,
                                                                synthetic_root):
    losses, bbox_map = train_config(python, SYNTHETIC, tmp_path / 'run')
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.8 * first, f'loss did not fall: {first:.3f} -> {last:.3f}'
    assert bbox_map is not None and bbox_map > 0.0


def test_init_is_the_official_one():
    """clcnet.torch models/clcnet.lua (fb.resnet.torch's ConvInit): normal with std
    sqrt(2 / (kW * kH * nOutputPlane)) for every conv, grouped ones included; BN 1 / 0."""
    import math
    torch.manual_seed(0)
    model = CLCNet('A')
    model.init_weights()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    grouped = [c for c in convs if c.groups > 1 and c.weight.numel() > 20000]
    assert grouped
    for conv in [convs[0]] + grouped[:3]:
        want = math.sqrt(2.0 / (conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels))
        assert conv.weight.std().item() == pytest.approx(want, rel=0.1)
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all((m.weight == 1).all() and (m.bias == 0).all() for m in bn)
