"""TF 'SAME' padding layers (mmext/models/layers/same_padding.py) and SpineNet's tf_compat.

TF's rule (tf.nn.conv2d / max_pool padding='SAME'): total = max((ceil(i/s) - 1) * s + (k-1)*d
+ 1 - i, 0), total // 2 before, the rest after; max-pool padding never wins."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmext.models.layers.same_padding import (Conv2dSame, MaxPool2dSame, conv_module_same,
                                              convert_to_same_padding, same_pad_amounts)

REGISTRY_SCOPE = 'mmdet'


@pytest.mark.parametrize('size,k,s,want', [
    (256, 3, 2, (0, 1)),   # 3x3/2 on an even size: nothing before, one after
    (256, 7, 2, (2, 3)),   # the SpineNet stem
    (255, 3, 2, (1, 1)),
    (64, 3, 1, (1, 1)),    # stride 1: symmetric, as PyTorch
    (64, 5, 4, (0, 1)),    # tensorflow/tpu's 5x5/4 pool
])
def test_same_pad_amounts_follow_tf(size, k, s, want):
    assert same_pad_amounts(size, k, s) == want


def test_conv2d_same_pads_asymmetrically():
    conv = Conv2dSame(2, 3, 3, stride=2, bias=True)
    x = torch.randn(1, 2, 8, 10)
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)
    assert torch.allclose(conv(x), ref)
    # PyTorch's symmetric padding gives other values
    assert not torch.allclose(F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1), ref)


def test_max_pool_same_never_picks_padding():
    x = -torch.rand(1, 1, 4, 4) - 1.0  # all negative: zero padding would win
    out = MaxPool2dSame(3, 2)(x)
    assert out.shape[-2:] == (2, 2) and (out < 0).all()
    assert torch.equal(out[0, 0, 1, 1], x[0, 0, 2:, 2:].max())


def test_conv_module_same_keeps_keys_and_convert_keeps_parameters():
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    keys = set(plain.state_dict())
    w = plain[0].weight
    convert_to_same_padding(plain)
    assert isinstance(plain[0], Conv2dSame) and plain[0].weight is w
    assert type(plain[1]) is nn.Conv2d  # stride 1 is already TF's padding
    assert set(plain.state_dict()) == keys
    cm = conv_module_same(3, 8, 7, stride=2, bias=False, norm_cfg=dict(type='BN'))
    assert isinstance(cm.conv, Conv2dSame) and set(cm.state_dict()) >= {'conv.weight',
                                                                       'bn.weight'}
    assert cm(torch.randn(1, 3, 32, 32)).shape[-2:] == (16, 16)


def _pools(module):
    return [m for m in module.modules() if isinstance(m, nn.MaxPool2d)]


def test_spinenet_tf_compat_conventions():
    from mmext.models.backbones.spinenet import SpineNet
    default = SpineNet('49S')
    mg = SpineNet('49S', tf_compat='model_garden')
    tpu = SpineNet('49S', tf_compat='tpu')
    # default unchanged: PyTorch padding, one pool per downsample, BN as norm_cfg
    assert not any(isinstance(m, (Conv2dSame, MaxPool2dSame)) for m in default.modules())
    assert default.stem[0].bn.eps == 1e-5
    # Model Garden: ratio 8 = 3x3/2 conv + two 3x3/2 'same' pools; ratio 4 = one pool
    ratios = {}
    for resamples in mg.resamples:
        for r in resamples:
            if isinstance(r.down, nn.Sequential):
                n = len(_pools(r.down))
                ratios.setdefault(n, 0)
                ratios[n] += 1
                assert all(isinstance(p, MaxPool2dSame) and p.kernel_size == 3
                           for p in _pools(r.down))
                assert isinstance(r.down[0].conv, Conv2dSame)
    assert set(ratios) >= {0, 1, 2}
    assert isinstance(mg.stem[0].conv, Conv2dSame) and isinstance(mg.stem[1], MaxPool2dSame)
    assert (mg.stem[0].bn.eps, mg.stem[0].bn.momentum) == (1e-3, 0.01)
    # tensorflow/tpu: PyTorch-padded convs, 'SAME' pools, one pool (5x5/4 for ratio 8)
    assert type(tpu.stem[0].conv) is nn.Conv2d and isinstance(tpu.stem[1], MaxPool2dSame)
    assert {p.kernel_size for p in _pools(tpu)} == {3, 5}
    assert (tpu.stem[0].bn.eps, tpu.stem[0].bn.momentum) == (1e-4, 0.003)
    # an explicit norm_cfg eps wins
    assert SpineNet('49S', tf_compat='model_garden',
                    norm_cfg=dict(type='BN', eps=1e-5)).stem[0].bn.eps == 1e-5
    # same keys in every convention: converted weights load into any of them
    assert set(default.state_dict()) == set(mg.state_dict()) == set(tpu.state_dict())
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert [o.shape for o in mg.eval()(x)] == [o.shape for o in default.eval()(x)]


def test_spinenet_rejects_unknown_tf_compat():
    from mmext.models.backbones.spinenet import SpineNet
    with pytest.raises(ValueError, match=r"tf_compat='keras' is not one of \[None, "
                                         r"'model_garden', 'tpu'\]"):
        SpineNet('49S', tf_compat='keras')
