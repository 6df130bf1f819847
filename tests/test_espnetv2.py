"""ESPNetv2 (Mehta et al., CVPR 2019, arXiv:1811.11431): EESP units, the width table, the SSD
detector configs."""
import os.path as osp

import pytest
import torch
from mmengine.analysis import FlopAnalyzer, get_model_complexity_info

import mmext  # noqa: F401
from mmext.analysis import build_model, count_params, model_complexity
from mmext.models.backbones import ESPNetv2
from mmext.models.layers import EESP, StridedEESP, eesp_dilations

from conftest import train_config

# The paper's ImageNet table (Mehta et al., CVPR 2019): s -> (params M, FLOPs M at 224)
PAPER = {
    0.5: (1.24, 28.4),
    1.0: (1.67, 85.7),
    1.25: (1.96, 123.4),
    1.5: (2.31, 168.6),
    2.0: (3.49, 284.8),
}
# Exact parameter counts of the ImageNet model (num_classes=1000), the official EESPNet's
# structure (tests/test_model_converters.py loads the official layout into it strictly); the
# paper's table rounds them to 1.24 / 1.67 / 1.96 / 2.31 / 3.49 M. The official model also holds
# level5_0's image shortcut, built and never called (3 * 3 * 3 * 3 + 3 * c5 weights + BN/PReLU),
# which this count leaves out.
PARAMS = {0.5: 1239722, 1.0: 1666942, 1.25: 1961542, 1.5: 2310190, 2.0: 3491934}
SSD300 = osp.join('configs', 'espnetv2', 'ssd_espnetv2-2.0_8xb24-300-120e_coco.py')
SSD512 = osp.join('configs', 'espnetv2', 'ssd_espnetv2-2.0_8xb24-512-120e_coco.py')
SYNTHETIC = osp.join('configs', 'espnetv2', 'ssd_espnetv2-0.5_synthetic.py')


def _flops_by_operator(model, size=224):
    with torch.no_grad():
        fa = FlopAnalyzer(model.eval(), (torch.zeros(1, 3, size, size),))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        return dict(fa.by_operator())


@pytest.mark.parametrize('s', sorted(PAPER))
def test_imagenet_model_params_and_flops_match_paper_table(s):
    """The paper's figures to its precision (params in M to 2 decimals, FLOPs in M to 1), and
    the exact counts. The paper's FLOPs are the official counter's: multiply-adds of
    the Conv2d layers only (EdgeNets utilities/flops_compute.py hooks nn.Conv2d, not the
    classifier or BN); mmengine's total adds BN (one per element) and the linear layer."""
    params, flops = PAPER[s]
    model = ESPNetv2(s, num_classes=1000)
    assert count_params(model) == PARAMS[s]
    assert round(PARAMS[s] / 1e6, 2) == params
    ops = _flops_by_operator(model)
    assert round(ops['conv'] / 1e6, 1) == flops
    assert ops['linear'] == 1000 * ESPNetv2.arch_settings[s][5]


def test_mmengine_total_is_paper_conv_flops_plus_bn_and_classifier():
    """What get_model_complexity_info (mmdet's get_flops) reports for s = 1.0: 92.9 M, i.e. the
    paper's 85.7 M conv multiply-adds + 6.1 M for BN + 1.0 M for the classifier."""
    model = ESPNetv2(1.0, num_classes=1000).eval()
    ops = _flops_by_operator(model)
    with torch.no_grad():
        total = get_model_complexity_info(model, None, inputs=torch.zeros(1, 3, 224, 224),
                                          show_table=False, show_arch=False)['flops']
    assert total == pytest.approx(sum(ops.values()), rel=1e-6)
    assert total / 1e6 == pytest.approx(92.9, abs=0.2)


def test_dilations_follow_receptive_field_limits():
    assert eesp_dilations(4, 13) == [1, 2, 3, 4]
    assert eesp_dilations(4, 9) == [1, 2, 3, 4]
    assert eesp_dilations(4, 7) == [1, 1, 2, 3]
    assert eesp_dilations(4, 5) == [1, 1, 1, 2]
    model = ESPNetv2(1.0)
    # (strided unit, EESP units) per level 2..5 -- the official EESPNet's dilation rules
    expected = {2: ([1, 2, 3, 4], None), 3: ([1, 2, 3, 4], [1, 2, 3, 4]),
                4: ([1, 2, 3, 4], [1, 1, 2, 3]), 5: ([1, 1, 2, 3], [1, 1, 1, 2])}
    for level, units in zip(range(2, 6), model.levels):
        strided, unit = expected[level]
        assert units[0].eesp.dilations == strided
        eesps = [u for u in units[1:] if isinstance(u, EESP)]
        assert len(eesps) == {2: 0, 3: 3, 4: 7, 5: 3}[level]
        assert all(u.dilations == unit for u in eesps)
        assert [b.dilation[0] for b in units[0].eesp.branches] == strided


def test_image_shortcut_at_level_5_in_the_detector_only():
    """EdgeNets: ESPNetv2SSD.forward passes the image to level5_0, EESPNet.forward does not."""
    shortcuts = lambda m: [u[0].image_shortcut is not None for u in m.levels]  # noqa: E731
    assert shortcuts(ESPNetv2(2.0)) == [True, True, True, True]
    assert shortcuts(ESPNetv2(2.0, num_classes=1000)) == [True, True, True, False]
    assert shortcuts(ESPNetv2(2.0, level5_image_shortcut=False)) == [True, True, True, False]
    # the level-5 shortcut is used: its weights change the level-5 output only
    model = ESPNetv2(0.5, out_indices=(3, 4)).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        model.levels[3][0].image_shortcut[1].bn.bias.add_(1.0)
        after = model(x)
    assert torch.equal(before[0], after[0]) and not torch.equal(before[1], after[1])


def test_detector_keeps_the_final_1x1_as_edgenets():
    """EdgeNets model/detection/espnetv2.py keeps basenet.level5[4] (the delete is commented
    out): level 5 ends with the grouped 1x1 to the final width, 1280 at s = 2.0."""
    model = ESPNetv2(2.0)
    final = model.levels[3][-1]
    assert (final.conv.in_channels, final.conv.out_channels, final.conv.groups) == \
        (1024, 1280, 4)
    assert model.out_channels[4] == 1280
    lean = ESPNetv2(2.0, final_conv=False, level5_image_shortcut=False)
    assert lean.out_channels[4] == 1024 and lean.levels[3][-1].conv.groups == 1024
    with pytest.raises(ValueError, match='final_conv=False drops the 1x1'):
        ESPNetv2(2.0, final_conv=False, num_classes=10)


@pytest.mark.parametrize('s', [0.5, 2.0])
def test_outputs_strides_and_channels(s):
    model = ESPNetv2(s, out_indices=(0, 1, 2, 3, 4)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 224, 192))
    widths = ESPNetv2.arch_settings[s]
    channels = list(widths[:4]) + [widths[5]]  # level 5 ends with the final 1x1
    for out, stride, c in zip(outs, ESPNetv2.strides, channels):
        assert out.shape == (1, c, -(-224 // stride), -(-192 // stride))
    assert model.out_channels == channels


def test_eesp_residual_and_strided_shapes():
    x = torch.rand(2, 64, 20, 20)
    unit = EESP(64, 64, receptive_field_limit=9).eval()
    assert unit.residual and unit(x).shape == x.shape
    down = StridedEESP(64, 128, receptive_field_limit=9).eval()
    image = torch.rand(2, 3, 80, 80)
    assert down(x, image).shape == (2, 128, 10, 10)
    assert down(x).shape == (2, 128, 10, 10)  # the shortcut is optional at run time


def test_hierarchical_fusion_sums_branches_cumulatively():
    """Branch k's output is the sum of branches 0..k (hierarchical feature fusion)."""
    unit = EESP(16, 16, num_branches=4, receptive_field_limit=13).eval()
    captured = []
    hook = unit.cat_norm.register_forward_hook(lambda m, i, o: captured.append(i[0]))
    x = torch.rand(1, 16, 9, 9)
    with torch.no_grad():
        unit(x)
        reduced = unit.reduce(x)
        branches = [b(reduced) for b in unit.branches]
    hook.remove()
    expected = torch.cat([sum(branches[:k + 1]) for k in range(4)], dim=1)
    assert torch.allclose(captured[0], expected, atol=1e-6)


def test_frozen_stages_and_norm_eval():
    model = ESPNetv2(0.5, frozen_stages=2, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.level1.parameters())
    assert not any(p.requires_grad for p in model.levels[0].parameters())
    assert all(p.requires_grad for p in model.levels[1].parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_unknown_width_scale_names_the_allowed_values():
    with pytest.raises(ValueError, match=r'widen_factor=0\.75.*0\.5, 1\.0, 1\.25, 1\.5, 2\.0'):
        ESPNetv2(0.75)
    with pytest.raises(ValueError, match="widen_factor='big'"):
        ESPNetv2('big')
    with pytest.raises(ValueError, match='widen_factor=True'):
        ESPNetv2(True)


@pytest.mark.parametrize('name', [2, 2.0, '2.0', '2', 'ESPNetv2-2.0', 'espnetv2_2'])
def test_width_scale_names(name):
    assert ESPNetv2(name).widen_factor == 2.0


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=30, out_channels=64), 'in_channels=30 is not divisible by num_branches=4'),
    (dict(in_channels=64, out_channels=66), 'out_channels=66 is not divisible'),
    (dict(in_channels=64, out_channels=40), 'out_channels / num_branches = 10'),
    (dict(in_channels=64, out_channels=64, stride=3), 'stride=3'),
    (dict(in_channels=64, out_channels=64, dilations=[1, 2]), 'dilations'),
])
def test_eesp_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EESP(**kwargs)


def test_bad_backbone_arguments():
    with pytest.raises(ValueError, match=r'out_indices=\(5,\) must be a non-empty subset of 0..4'):
        ESPNetv2(1.0, out_indices=(5,))
    with pytest.raises(ValueError, match=r'frozen_stages=6 is not in -1..5'):
        ESPNetv2(1.0, frozen_stages=6)
    with pytest.raises(ValueError, match='num_branches=3'):
        ESPNetv2(1.0, num_branches=3)
    with pytest.raises(ValueError, match='must exceed'):
        StridedEESP(64, 64)
    with pytest.raises(ValueError, match=r'out_indices=\(2, 2\) repeats \[2\]'):
        ESPNetv2(1.0, out_indices=(2, 2))
    with pytest.raises(ValueError, match='num_classes=-1 must be an integer >= 0'):
        ESPNetv2(1.0, num_classes=-1)
    with pytest.raises(ValueError, match='num_branches=0 must be an integer >= 1'):
        ESPNetv2(1.0, num_branches=0)
    with pytest.raises(ValueError, match='in_channels=0 must be an integer >= 1'):
        ESPNetv2(1.0, in_channels=0)
    with pytest.raises(ValueError, match=r'dropout=1\.2 must be in \[0, 1\)'):
        ESPNetv2(1.0, num_classes=10, dropout=1.2)


def test_ssd_detector_configs_build_and_count():
    """EdgeNets SSD300: 1.1 B FLOPs, 5.81 M params with its EESP-pyramid decoder, which mmext
    replaces by mmdet's depth-wise SSD neck (lighter; see the config)."""
    r300 = model_complexity(SSD300, (300, 300))
    r512 = model_complexity(SSD512, (512, 512))
    assert 0.8e9 < r300['flops'] < 1.1e9
    assert 2.3e9 < r512['flops'] < 3.2e9
    assert r300['params'] == r512['params']
    model = build_model(SSD300)
    assert model.backbone.widen_factor == 2.0
    # EdgeNets' detector: level 5 with the final 1x1 (1280) and the image shortcut
    assert model.backbone.out_channels[2:] == [256, 512, 1280]
    assert model.backbone.levels[3][0].image_shortcut is not None
    assert type(model.bbox_head).__name__ == 'FixedSSDHead'


@pytest.mark.slow
def test_synthetic_ssd_training_reduces_loss_and_detects(tmp_path, python, synthetic_root):
    losses, bbox_map = train_config(python, SYNTHETIC, tmp_path / 'run')
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.8 * first, f'loss did not fall: {first:.3f} -> {last:.3f}'
    assert bbox_map is not None and bbox_map > 0.0


def test_init_is_the_official_one():
    """EdgeNets EESPNet.init_params: kaiming_normal_(mode='fan_out') on every conv -- PyTorch's
    fan-out, k * k * out_channels even for depth-wise convs, std sqrt(2 / fan_out) --, BN 1 / 0,
    linear normal std 0.001."""
    import math
    torch.manual_seed(0)
    model = ESPNetv2(1.0, num_classes=1000)
    model.init_weights()
    convs = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    for name in ['level1.conv', 'levels.2.1.branches.3', 'levels.2.1.reduce.conv',
                 'levels.3.5.conv']:
        conv = convs[name]
        want = math.sqrt(2.0 / (conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels))
        assert conv.weight.std().item() == pytest.approx(want, rel=0.1), name
    assert model.head[3].weight.std().item() == pytest.approx(0.001, rel=0.05)
