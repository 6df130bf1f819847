"""SpineNet backbones against the paper (Du et al., CVPR 2020, Table 3).

Counting convention: the paper's TensorFlow RetinaNet predicts COCO's 90 category ids, so the
detector figures are compared with ``num_classes=90`` (our COCO configs use mmdet's 80, which is
0.21 M parameters / 1.8 B FLOPs less for SpineNet-49). FLOPs: mmengine's counter, one multiply-add
= one FLOP, as the paper.
"""
import glob
import math

import pytest
import torch
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.analysis import build_model, count_params, model_complexity
from mmext.models.backbones import SpineNet

# variant: (config input size, paper params M, paper FLOPs B)
PAPER = {
    '49S': (640, 12.0, 33.8),
    '49': (640, 28.5, 85.4),
    '96': (1024, 43.0, 265.4),
    '143': (1280, 66.9, 524.4),
    '190': (1280, 163.6, 1885.0),
}
# SpineNet-49S does not reach the paper's 12.0 M / 33.8 B with the official code's structure:
# the PyTorch reference port (yan-roo/SpineNet-Pytorch) measures the same 11.15 M / 30.04 B as
# we do (80 classes), and TF's model zoo lists 11.9 M. We pin our figures to that port's.
PORT_49S_80CLS = (11.15, 30.04)


def detector(arch, size, num_classes=90):
    f = glob.glob(f'configs/spinenet/retinanet_spinenet-{arch.lower()}_8xb32-{size}-*.py')
    assert len(f) == 1, f
    cfg = Config.fromfile(f[0])
    cfg.model.bbox_head.num_classes = num_classes
    return build_model(cfg)


@pytest.mark.parametrize('arch', ['49', '96', '143', '190'])
def test_retinanet_params_match_paper_table(arch):
    size, params, _ = PAPER[arch]
    ours = count_params(detector(arch, size)) / 1e6
    assert ours == pytest.approx(params, rel=0.02), f'{arch}: {ours:.2f} M vs paper {params} M'


@pytest.mark.parametrize('arch, size', [('49', 640), ('49', 896), ('96', 1024)])
def test_retinanet_flops_match_paper_table(arch, size):
    paper = {('49', 896): 167.4}.get((arch, size), PAPER[arch][2])
    flops = model_complexity(detector(arch, size), (size, size))['flops'] / 1e9
    assert flops == pytest.approx(paper, rel=0.05), f'{arch}@{size}: {flops:.1f} vs {paper}'


@pytest.mark.parametrize('arch', ['143', '190'])
def test_retinanet_flops_of_large_variants_by_area_scaling(arch):
    """143/190 at 1280 take minutes and GBs to trace on 2 cores; the network is fully
    convolutional with exact 2x resampling, so FLOPs scale exactly with the input area:
    measure at 640 and scale by 4 (the exact 1280 figure is checked in the slow test)."""
    size, _, paper = PAPER[arch]
    flops = model_complexity(detector(arch, size), (640, 640))['flops'] * (size / 640)**2 / 1e9
    assert flops == pytest.approx(paper, rel=0.05)


def test_flops_scale_exactly_with_input_area():
    model = detector('49S', 640)
    small = model_complexity(model, (256, 256))['flops']
    large = model_complexity(model, (512, 512))['flops']
    assert large / small == pytest.approx(4.0, rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['143', '190'])
def test_retinanet_flops_of_large_variants_at_paper_size(arch):
    size, _, paper = PAPER[arch]
    flops = model_complexity(detector(arch, size), (size, size))['flops'] / 1e9
    assert flops == pytest.approx(paper, rel=0.05)


def test_spinenet49s_matches_reference_port_and_documents_gap_to_paper():
    model = detector('49S', 640, num_classes=80)
    params = count_params(model) / 1e6
    flops = model_complexity(model, (640, 640))['flops'] / 1e9
    assert params == pytest.approx(PORT_49S_80CLS[0], abs=0.01)
    assert flops == pytest.approx(PORT_49S_80CLS[1], rel=0.01)
    # the gap to the paper's 12.0 M / 33.8 B stays as measured, not silently larger
    assert 0.90 < params / PAPER['49S'][1] < 0.95


@pytest.mark.parametrize('arch, channels', [('49S', 128), ('49', 256), ('96', 256),
                                            ('143', 256), ('190', 512)])
def test_output_strides_and_channels(arch, channels):
    net = SpineNet(arch=arch).eval()
    assert net.out_channels == channels
    with torch.no_grad():
        outs = net(torch.zeros(1, 3, 256, 384))
    assert [tuple(o.shape) for o in outs] == [
        (1, channels, 256 // s, 384 // s) for s in (8, 16, 32, 64, 128)]


def test_forward_backward_on_cpu_with_stochastic_depth_and_relu():
    net = SpineNet(arch='49S', out_levels=(3, 5), act_cfg=dict(type='ReLU'),
                   drop_path_rate=0.2).train()
    outs = net(torch.rand(2, 3, 128, 128))
    assert [o.shape[-1] for o in outs] == [16, 4]
    sum(o.mean() for o in outs).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # stochastic depth grows linearly over the 15 scale-permuted blocks (official rule)
    full = SpineNet(arch='49S', drop_path_rate=0.2)
    rates = [b[0].drop_path.drop_prob for b in full.blocks]
    assert rates[0] == pytest.approx(0.2 / 15) and rates[-1] == pytest.approx(0.2)


def test_blocks_that_feed_no_requested_level_are_not_built():
    """Under DDP unused parameters are an error; P3 alone needs 10 of the 15 blocks."""
    p3 = SpineNet(arch='49S', out_levels=(3, ))
    built = [i for i, b in enumerate(p3.blocks) if not isinstance(b, torch.nn.Identity)]
    assert built == [0, 1, 2, 3, 4, 5, 6, 7, 8, 11]
    out = p3(torch.rand(2, 3, 128, 128))
    out[0].sum().backward()
    assert all(p.grad is not None for p in p3.parameters())


def test_unused_level5_block_is_merged_into_p5():
    """Paper Fig. 4 / official code: permuted block 9 (L5) feeds nothing, so P5 adds it."""
    net = SpineNet(arch='49')
    merged = {net.block_specs[i].level: [j - 2 for j in u]
              for i, u in enumerate(net.merge_unused) if u}
    assert merged == {5: [9]}


def test_frozen_stages_and_norm_eval():
    net = SpineNet(arch='49S', frozen_stages=1, norm_eval=True).train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.stem_blocks.parameters())
    assert all(p.requires_grad for p in net.blocks.parameters())
    assert not any(m.training for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_unknown_variant_lists_the_allowed_ones():
    with pytest.raises(ValueError, match=r"arch='50'.*\['49S', '49', '96', '143', '190'\]"):
        SpineNet(arch='50')


@pytest.mark.parametrize('name', ['49S', '49s', 'SpineNet-49S', 'spinenet_49s', ' 49s '])
def test_arch_names_are_the_papers_case_insensitively(name):
    assert SpineNet(arch=name, out_levels=(3, )).arch == '49S'


def test_input_not_multiple_of_128_is_a_clear_error():
    net = SpineNet(arch='49S')
    with pytest.raises(ValueError, match=r'200x256 is not a multiple of 128.*pad_size_divisor'):
        net(torch.zeros(1, 3, 200, 256))


def test_bad_out_levels_and_frozen_stages():
    with pytest.raises(ValueError, match=r'out_levels=\(2, 3\)'):
        SpineNet(out_levels=(2, 3))
    with pytest.raises(ValueError, match='frozen_stages=3'):
        SpineNet(frozen_stages=3)
    with pytest.raises(ValueError, match=r'drop_path_rate=1\.0 must be in \[0, 1\)'):
        SpineNet(drop_path_rate=1.0)


def test_bad_custom_block_specs_are_clear_errors():
    with pytest.raises(ValueError, match='block 0 reads block 5, but only 2 blocks exist'):
        SpineNet(block_specs=[(3, 'bottleneck', (0, 5), True)], out_levels=(3, ))
    with pytest.raises(ValueError, match="block type 'dense' not in"):
        SpineNet(block_specs=[(3, 'dense', (0, 1), True)], out_levels=(3, ))
    with pytest.raises(ValueError, match=r'no output block at levels \[4\]'):
        SpineNet(block_specs=[(3, 'bottleneck', (0, 1), True)], out_levels=(3, 4))
    with pytest.raises(ValueError, match=r'block_specs\[0\] has level 9; levels are '
                                         r'\[1, 2, 3, 4, 5, 6, 7\]'):
        SpineNet(block_specs=[(9, 'bottleneck', (0, 1), True)], out_levels=(3, ))
    with pytest.raises(ValueError, match=r'block_specs\[0\]=.* is not \(level, block'):
        SpineNet(block_specs=[(3, 'bottleneck')], out_levels=(3, ))
    with pytest.raises(ValueError, match='exactly two earlier blocks'):
        SpineNet(block_specs=[(3, 'bottleneck', (0, ), True)], out_levels=(3, ))


def test_repeated_out_levels_are_rejected():
    with pytest.raises(ValueError, match=r'out_levels=\(3, 3\) repeats a level'):
        SpineNet(arch='49S', out_levels=(3, 3))


def _fan_in(conv):
    return conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]


def test_default_init_is_the_official_variance_scaling():
    """tensorflow/tpu nn_ops.conv2d_fixed_padding: tf.variance_scaling_initializer() (Model
    Garden's SpineNet: kernel_initializer='VarianceScaling'): scale 1, fan-in, a normal truncated
    at 2 std with the std corrected so the weights' std is sqrt(1 / fan_in)."""
    torch.manual_seed(0)
    net = SpineNet(arch='49S')
    net.init_weights()
    convs = dict((n, m) for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d))
    # the stem 7x7 (fan-in 147), a 3x3 (41 * 9), a resample 1x1 (164), an endpoint 1x1 (664)
    for name in ['stem.0.conv', 'stem_blocks.0.0.body.1.conv', 'resamples.0.0.reduce.conv',
                 'endpoints.7.conv']:
        w = convs[name].weight
        want = math.sqrt(1.0 / _fan_in(convs[name]))
        assert w.std().item() == pytest.approx(want, rel=0.05), name
        assert w.abs().max().item() <= 2 * want / 0.87962566103423978 + 1e-7, name
        assert abs(w.mean().item()) < 0.1 * want
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all((m.weight == 1).all() and (m.bias == 0).all() for m in bn)


def test_kaiming_init_is_kept_as_an_option():
    from mmext.models.backbones.spinenet import KAIMING_INIT_CFG
    torch.manual_seed(0)
    net = SpineNet(arch='49S', out_levels=(3, ), init_cfg=KAIMING_INIT_CFG)
    net.init_weights()
    w = net.stem[0].conv.weight  # Kaiming fan-out: sqrt(2 / (64 * 49))
    assert w.std().item() == pytest.approx(math.sqrt(2 / (64 * 49)), rel=0.05)


def test_full_state_dict_loads_into_fewer_out_levels(monkeypatch):
    """A full SpineNet's weights load strictly into one with pruned blocks; the unused blocks'
    tensors are dropped with a message, and the kept level gives the full model's output."""
    import mmext.models.backbones.spinenet as spinenet_module
    from mmengine.runner.checkpoint import load_state_dict
    messages = []
    monkeypatch.setattr(spinenet_module, 'print_log', lambda msg, **kw: messages.append(msg))
    torch.manual_seed(0)
    full = SpineNet(arch='49S').eval()
    full.init_weights()
    p3 = SpineNet(arch='49S', out_levels=(3, )).eval()
    result = p3.load_state_dict(full.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(messages) == 1
    dropped = set(messages[0].rsplit('(', 1)[1].rstrip(')').split(', '))
    pruned = [9, 10, 12, 13, 14]  # of 49S's 15 blocks, P3 needs 0-8 and 11
    assert dropped == ({f'blocks.{i}' for i in pruned} | {f'resamples.{i}' for i in pruned} |
                       {f'endpoints.{lv}' for lv in (4, 5, 6, 7)})
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(p3(x)[0], full(x)[0])
    # mmengine's loader (load_checkpoint) takes the same path
    other = SpineNet(arch='49S', out_levels=(3, 4))
    load_state_dict(other, full.state_dict(), strict=True)
    # a real mismatch in a built block still fails
    bad = full.state_dict()
    bad['blocks.0.0.body.0.conv.weight'] = bad['blocks.0.0.body.0.conv.weight'][:1]
    with pytest.raises(RuntimeError, match='blocks.0.0.body.0.conv.weight'):
        SpineNet(arch='49S', out_levels=(3, )).load_state_dict(bad, strict=True)


@pytest.mark.slow
def test_synthetic_spinenet49s_detector_trains(tmp_path, python, synthetic_root):
    """The synthetic SpineNet-49S detector (CenterNet on P3; RetinaNet's focal-loss head does not
    learn in a CPU budget from scratch) trains: loss falls, bbox mAP > 0."""
    from conftest import train_config
    losses, bbox_map = train_config(
        python, 'configs/spinenet/centernet_spinenet-49s_synthetic.py', tmp_path / 'spinenet')
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3
    assert bbox_map is not None and bbox_map > 0.0
