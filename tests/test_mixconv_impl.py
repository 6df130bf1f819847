"""The padded single-conv MixConv (depthwise, and dense groups as one grouped conv) equals the
per-group one: outputs and gradients (issue 22)."""
import pytest
import torch

from mmext.models.layers.mixconv import GroupedPointwiseConv2d, MixConv2d, padded_cost

CASES = [
    # channels, kernels, stride, dilation, split, bias, channels_last
    (24, (3, 5, 7), 1, 1, 'equal', False, False),
    (31, (3, 5, 7, 9), 1, 1, 'equal', False, False),  # odd channels: remainder in group 0
    (32, (3, 5, 7, 9), 2, 1, 'equal', False, False),
    (33, (3, 5), 2, 2, 'equal', True, False),  # dilation and bias
    (40, (3, 5, 7), 1, 1, 'exponential', False, False),
    (120, (3, 5, 7, 9), 1, 1, 'equal', False, True),  # channels-last
    (17, (5, 3), 2, 1, 'equal', False, True),  # kernels not sorted, odd size input
]


@pytest.mark.parametrize('c,kernels,stride,dilation,split,bias,cl', CASES)
def test_padded_equals_split_forward_and_backward(c, kernels, stride, dilation, split, bias,
                                                  cl):
    torch.manual_seed(0)
    ref = MixConv2d(c, c, kernels, stride=stride, dilation=dilation, bias=bias, split=split,
                    impl='split')
    fast = MixConv2d(c, c, kernels, stride=stride, dilation=dilation, bias=bias, split=split,
                     impl='padded')
    fast.load_state_dict(ref.state_dict())  # same parameters, same keys
    assert ref.impl == 'split' and fast.impl == 'padded'
    assert_same_function(ref, fast, torch.randn(2, c, 15, 13), cl)


def assert_same_function(ref, fast, x, channels_last):
    """``fast`` gives ``ref``'s outputs and input / parameter gradients (float rounding)."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ref(xa), fast(xb)
    assert ya.shape == yb.shape
    torch.testing.assert_close(yb, ya, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-5)
    for (name, pa), pb in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(pb.grad, pa.grad, rtol=1e-4, atol=1e-4, msg=name)


def test_auto_chooses_by_cost_and_refuses_bad_impl():
    # kernels 3,5 on equal halves: 25 / 17 = 1.47x the multiply-adds; measured slower on CPU
    assert padded_cost((3, 5), (8, 8)) == pytest.approx(50 / 34)
    assert MixConv2d(16, 16, (3, 5)).impl == 'split'
    assert MixConv2d(20, 20, (3, 5, 7, 9, 11)).impl == 'split'
    # equal kernels: padding adds nothing, one conv replaces the groups
    assert padded_cost((5, 5), (8, 8)) == 1.0
    assert MixConv2d(16, 16, (5, 5)).impl == 'padded'
    assert MixConv2d(16, 16, (3, )).impl == 'split'  # a single conv: nothing to merge
    with pytest.raises(ValueError, match="impl='fused' is not one of"):
        MixConv2d(16, 16, (3, 5), impl='fused')
    # dense groups: one grouped conv where the splits are equal (MixNet's 1x1 expansions)
    assert GroupedPointwiseConv2d(40, 240, 2).impl == 'padded'
    assert GroupedPointwiseConv2d(40, 240, 2, impl='split').impl == 'split'
    assert GroupedPointwiseConv2d(41, 240, 2).impl == 'split'  # 21 + 20 inputs: no grouped conv
    assert MixConv2d(16, 32, (3, 5), depthwise=False).impl == 'split'  # padding would add MACs
    with pytest.raises(ValueError, match=r'equal channel splits, got \[8, 7\] -> \[16, 16\]'):
        MixConv2d(15, 32, (1, 1), depthwise=False, impl='padded')


DENSE_CASES = [
    # in, out, kernels, stride, split, bias, channels_last
    (40, 240, (1, 1), 1, 'equal', False, False),  # MixNet-M's a1.1 expansion
    (240, 40, (1, 1), 1, 'equal', True, True),  # projection, bias, channels-last
    (24, 36, (1, 1, 1), 1, 'equal', False, False),
    (16, 32, (3, 5), 2, 'equal', False, False),  # kernels padded to 5x5, stride 2
    (32, 16, (1, 1), 1, 'exponential', False, True),  # 16 + 16 -> 8 + 8
]


@pytest.mark.parametrize('cin,cout,kernels,stride,split,bias,cl', DENSE_CASES)
def test_grouped_dense_conv_equals_split(cin, cout, kernels, stride, split, bias, cl):
    """Dense groups as one grouped conv: the per-group result, outputs and gradients."""
    torch.manual_seed(0)
    ref = MixConv2d(cin, cout, kernels, stride=stride, depthwise=False, bias=bias, split=split,
                    impl='split')
    fast = MixConv2d(cin, cout, kernels, stride=stride, depthwise=False, bias=bias,
                     split=split, impl='padded')
    fast.load_state_dict(ref.state_dict())
    assert fast.impl == 'padded'
    assert_same_function(ref, fast, torch.randn(2, cin, 11, 9), cl)


# --------------------------------------------- the GEMM weight-gradient backward (issue 22)
GRAD_CASES = [
    # channels, kernels, stride, dilation, split, bias, input (h, w)
    (24, (3, 5, 7), 1, 1, 'equal', False, (15, 13)),
    (31, (3, 5, 7, 9), 1, 1, 'equal', False, (16, 16)),  # odd channels
    (32, (3, 5, 7, 9), 2, 1, 'equal', False, (17, 12)),  # stride 2, odd and even sizes
    (33, (5, 3), 2, 2, 'equal', True, (15, 19)),  # dilation, bias, kernels not sorted
    (40, (3, 5, 7), 1, 1, 'exponential', False, (14, 14)),
    (12, (9, ), 1, 1, 'equal', False, (40, 9)),  # one kernel, more columns than one tile
    (18, (5, 7, 9), 2, 3, 'equal', True, (41, 38)),
]


def _grads(module, x, g):
    x = x.clone().requires_grad_()
    module(x).backward(g)
    return [x.grad] + [p.grad for p in module.parameters()]


@pytest.mark.parametrize('cl', [False, True], ids=['nchw', 'channels_last'])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('c,kernels,stride,dilation,split,bias,hw', GRAD_CASES)
def test_fast_backward_equals_pytorch_backward(c, kernels, stride, dilation, split, bias, hw,
                                               dtype, cl, monkeypatch):
    from mmext.models.layers import depthwise_conv
    monkeypatch.setattr(depthwise_conv, 'MIN_ELEMENTS', 0)  # the GEMM path on small inputs too
    calls = []
    real = depthwise_conv.weight_grad
    monkeypatch.setattr(depthwise_conv, 'weight_grad',
                        lambda *a, **kw: calls.append(a[2]) or real(*a, **kw))
    torch.manual_seed(0)
    ref = MixConv2d(c, c, kernels, stride=stride, dilation=dilation, bias=bias, split=split,
                    fast_backward=False).to(dtype)
    fast = MixConv2d(c, c, kernels, stride=stride, dilation=dilation, bias=bias, split=split
                     ).to(dtype)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(3, c, *hw, dtype=dtype)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = ref(x)
    g = torch.randn_like(y)
    torch.testing.assert_close(fast(x), y, rtol=0, atol=0)  # the same forward, bit for bit
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    for ga, gb in zip(_grads(ref, x, g), _grads(fast, x, g)):
        torch.testing.assert_close(gb, ga, **tol)
    # the GEMM weight gradient ran for every kernel it was measured faster on: all >= 5 in
    # NCHW, small maps in channels-last
    expected = [k for k in kernels if depthwise_conv.gemm_wins(k, *hw, cl)]
    assert sorted(calls) == sorted(expected)
    assert expected or cl
    # and the input gradient kept the input's layout
    xg = x.clone().requires_grad_()
    fast(xg).backward(g)
    assert xg.grad.is_contiguous(memory_format=torch.channels_last) == cl or c == 1


def test_fast_backward_only_where_it_was_measured_faster():
    from mmext.models.layers.depthwise_conv import depthwise_conv2d, use_fast_backward
    from mmext.models.layers.depthwise_conv import gemm_wins, is_nhwc
    x = torch.randn(2, 8, 9, 9)
    assert use_fast_backward(x) and not use_fast_backward(x.half())
    # a channel slice of a channels-last tensor is still channels-last for the rule
    assert is_nhwc(x.contiguous(memory_format=torch.channels_last)[:, 2:5])
    assert not is_nhwc(x[:, 2:5])
    assert not gemm_wins(3, 7, 7, False) and gemm_wins(5, 112, 112, False)
    assert gemm_wins(5, 7, 7, True) and not gemm_wins(5, 14, 14, True)
    assert gemm_wins(7, 14, 14, True) and not gemm_wins(9, 28, 28, True)
    with torch.no_grad():
        assert not use_fast_backward(x)
    w = torch.randn(8, 1, 5, 5, requires_grad=True)
    assert 'DepthwiseConv2d' in type(depthwise_conv2d(x, w, padding=2).grad_fn).__name__
    w3 = torch.randn(8, 1, 3, 3, requires_grad=True)  # 3x3: PyTorch's backward is faster
    assert 'Convolution' in type(depthwise_conv2d(x, w3, padding=1).grad_fn).__name__
    # a traced graph (mmengine's FLOP counter, export) sees the plain convolution
    conv = MixConv2d(8, 8, (3, 5))
    graph = torch.jit.trace(conv, x.requires_grad_()).inlined_graph
    assert 'PythonOp' not in str(graph) and str(graph).count('aten::_convolution') == 2
    assert 'fast_backward=True' in repr(conv)


def test_depthwise_conv2d_names_a_weight_that_is_not_depthwise():
    from mmext.models.layers.depthwise_conv import depthwise_conv2d
    x = torch.randn(2, 8, 9, 9)
    for w in (torch.randn(8, 2, 5, 5), torch.randn(6, 1, 5, 5), torch.randn(8, 1, 5, 3)):
        with pytest.raises(ValueError, match=r'weight of shape .* expected an \(N, C, H, W\) '
                                             r'input and a \(C, 1, k, k\) weight'):
            depthwise_conv2d(x, w, padding=2)

