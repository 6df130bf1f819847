"""The padded single-conv MixConv equals the per-group one: outputs and gradients (issue 22)."""
import pytest
import torch

from mmext.models.layers.mixconv import MixConv2d, padded_cost

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
    x = torch.randn(2, c, 15, 13)
    if cl:
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
    with pytest.raises(ValueError, match='needs a depthwise MixConv'):
        MixConv2d(16, 32, (1, 1), depthwise=False, impl='padded')
