"""CenterNet with stacked refinement stages vs mmdet's CenterNetHead."""
import re

import pytest
import torch
from mmdet.models.dense_heads import CenterNetHead
from mmengine.structures import InstanceData

import mmext  # noqa: F401
from mmext.models.dense_heads import CenterNetStackedHead

from mmengine.config import ConfigDict

TEST_CFG = ConfigDict(topk=20, local_maximum_kernel=3, max_per_img=20)


def _gt(batch=2):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(batch):
        xy = torch.rand(3, 2, generator=g) * 80
        wh = torch.rand(3, 2, generator=g) * 40 + 8
        out.append(InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                labels=torch.randint(0, 3, (3, ), generator=g)))
    return out


META = [dict(batch_input_shape=(128, 128), img_shape=(128, 128), scale_factor=(1.0, 1.0),
             border=(0, 128, 0, 128))] * 2


def _pair(**kw):
    torch.manual_seed(0)
    ref = CenterNetHead(16, 8, 3, test_cfg=TEST_CFG)
    ref.init_weights()
    ours = CenterNetStackedHead(16, 8, 3, test_cfg=TEST_CFG, **kw)
    ours.load_state_dict(ref.state_dict())  # strict: one stage has exactly mmdet's parameters
    return ref.eval(), ours.eval()


def test_one_stage_equals_mmdet_centernet_head():
    ref, ours = _pair(num_stages=1)
    x = (torch.rand(2, 16, 32, 32), )
    (r_hm, r_wh, r_off), (o_hm, o_wh, o_off) = ref(x), ours(x)
    for a, b in zip((r_hm, r_wh, r_off), (o_hm, o_wh, o_off)):
        assert len(b) == 1 and torch.equal(a[0], b[0])
    r_loss = ref.loss_by_feat(r_hm, r_wh, r_off, _gt(), META)
    o_loss = ours.loss_by_feat(o_hm, o_wh, o_off, _gt(), META)
    assert r_loss.keys() == o_loss.keys()
    for k in r_loss:
        assert torch.equal(r_loss[k], o_loss[k]), k
    r_det = ref.predict_by_feat(r_hm, r_wh, r_off, META)
    o_det = ours.predict_by_feat(o_hm, o_wh, o_off, META)
    for a, b in zip(r_det, o_det):
        assert torch.equal(a.bboxes, b.bboxes) and torch.equal(a.scores, b.scores)


@pytest.mark.parametrize('num_stages', [1, 2, 3, 4])
def test_shapes_per_stage(num_stages):
    head = CenterNetStackedHead(16, 8, 5, num_stages=num_stages, test_cfg=TEST_CFG,
                                refine_inputs=('heatmap', 'wh', 'offset'))
    hms, whs, offs = head((torch.rand(2, 16, 24, 40), ))
    assert len(hms) == len(whs) == len(offs) == num_stages
    for hm, wh, off in zip(hms, whs, offs):
        assert hm.shape == (2, 5, 24, 40) and wh.shape == off.shape == (2, 2, 24, 40)
        assert 0 <= hm.min() and hm.max() <= 1


def test_each_stage_loss_is_a_single_stage_loss_of_its_outputs():
    torch.manual_seed(1)
    head = CenterNetStackedHead(16, 8, 3, num_stages=3, stage_loss_weights=[0.2, 0.3, 0.5],
                                test_cfg=TEST_CFG)
    head.init_weights()
    outs = head((torch.rand(2, 16, 32, 32), ))
    losses = head.loss_by_feat(*outs, _gt(), META)
    assert sorted(losses) == sorted(f'{n}_s{s}' for s in (1, 2, 3)
                                    for n in ('loss_center_heatmap', 'loss_wh', 'loss_offset'))
    single = CenterNetHead(16, 8, 3, test_cfg=TEST_CFG)
    for s, w in enumerate([0.2, 0.3, 0.5]):
        ref = single.loss_by_feat([outs[0][s]], [outs[1][s]], [outs[2][s]], _gt(), META)
        for name, value in ref.items():
            torch.testing.assert_close(losses[f'{name}_s{s + 1}'], w * value)


def test_default_weights_average_the_stages_and_later_stages_get_gradients():
    head = CenterNetStackedHead(16, 8, 3, num_stages=2, test_cfg=TEST_CFG)
    assert head.stage_loss_weights == [0.5, 0.5]
    outs = head((torch.rand(2, 16, 32, 32), ))
    sum(head.loss_by_feat(*outs, _gt(), META).values()).backward()
    assert head.stage_heads[0]['heatmap'][0].weight.grad.abs().sum() > 0
    assert head.refine_blocks[0][0].weight.grad.abs().sum() > 0


def test_prediction_uses_the_chosen_stage_and_needs_no_border():
    head = CenterNetStackedHead(16, 8, 3, num_stages=2, test_cfg=TEST_CFG).eval()
    outs = head((torch.rand(1, 16, 32, 32), ))
    meta = [dict(batch_input_shape=(128, 128), img_shape=(128, 128), scale_factor=(1.0, 1.0))]
    last = head.predict_by_feat(*outs, meta)[0]
    first = head.predict_by_feat(*outs, meta, stage=1)[0]
    ref = CenterNetHead(16, 8, 3, test_cfg=TEST_CFG).predict_by_feat(
        [outs[0][0]], [outs[1][0]], [outs[2][0]], [{**meta[0], 'border': (0, 0, 0, 0)}])[0]
    assert torch.equal(first.bboxes, ref.bboxes)
    assert not torch.equal(last.scores, first.scores)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match='num_stages=0'):
        CenterNetStackedHead(16, 8, 3, num_stages=0)
    with pytest.raises(ValueError, match=r"refine_inputs=\('centers',\)"):
        CenterNetStackedHead(16, 8, 3, refine_inputs=('centers', ))
    with pytest.raises(ValueError, match='one weight per stage'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, stage_loss_weights=[1.0])
    with pytest.raises(ValueError, match=r'test_stage=3 is not a stage of 1\.\.2'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, test_stage=3)
    with pytest.raises(ValueError, match='refine_convs=0 must be an integer >= 1'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, refine_convs=0)
    head = CenterNetStackedHead(16, 8, 3, num_stages=2)
    with pytest.raises(ValueError, match='one feature map.*got 2 levels'):
        head((torch.rand(1, 16, 8, 8), torch.rand(1, 16, 4, 4)))


@pytest.mark.parametrize('stage', [0, 4, -4, 1.5, '1', True])
def test_predict_stage_outside_the_head_is_a_clear_error(stage):
    head = CenterNetStackedHead(16, 8, 3, num_stages=3, test_cfg=TEST_CFG).eval()
    outs = head((torch.rand(1, 16, 8, 8), ))
    with pytest.raises(ValueError, match=rf'stage={stage!r} is not a stage of 1\.\.3 '
                       rf'\(or -1\.\.-3\)'):
        head.predict_by_feat(*outs, META[:1], stage=stage)
    # the allowed ones: -3 is the first stage, 3 and -1 the last
    first = head.predict_by_feat(*outs, META[:1], stage=1)[0]
    assert torch.equal(head.predict_by_feat(*outs, META[:1], stage=-3)[0].scores, first.scores)
    assert torch.equal(head.predict_by_feat(*outs, META[:1], stage=3)[0].scores,
                       head.predict_by_feat(*outs, META[:1])[0].scores)


@pytest.mark.parametrize('test_stage', [1.5, 0, -3, True])
def test_bad_test_stage_is_an_error_at_build(test_stage):
    with pytest.raises(ValueError, match=rf'test_stage={test_stage!r} is not a stage of 1\.\.2'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, test_stage=test_stage)


@pytest.mark.parametrize('call', ['loss', 'predict'])
def test_fewer_or_more_stage_outputs_than_num_stages_are_an_error(call):
    head = CenterNetStackedHead(16, 8, 3, num_stages=3, test_cfg=TEST_CFG).eval()
    hms, whs, offs = head((torch.rand(2, 16, 8, 8), ))
    for bad in ((hms[:2], whs[:2], offs[:2]), (hms, whs[:1], offs), (hms + hms[:1], whs, offs)):
        counts = [len(b) for b in bad]
        with pytest.raises(ValueError, match=rf'got {re.escape(str(counts))} \(heatmap, wh, '
                           rf'offset\) stage outputs, needs 3 of each'):
            if call == 'loss':
                head.loss_by_feat(*bad, _gt(), META)
            else:
                head.predict_by_feat(*bad, META)


def test_refine_channels_and_stage_weights_are_checked():
    with pytest.raises(ValueError, match=r'refine_channels=0 must be an integer >= 1, or None '
                       r'for in_channels \(16\)'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, refine_channels=0)
    with pytest.raises(ValueError, match=r'refine_channels=8\.0 must be an integer'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, refine_channels=8.0)
    head = CenterNetStackedHead(16, 8, 3, num_stages=2, refine_channels=None)
    assert head.refine_blocks[0][0].out_channels == 16
    assert CenterNetStackedHead(16, 8, 3, num_stages=2,
                                refine_channels=4).refine_blocks[0][0].out_channels == 4
    with pytest.raises(ValueError, match=r'stage_loss_weights=\[-0\.5, 1\.5\] must be numbers '
                       r'>= 0'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, stage_loss_weights=[-0.5, 1.5])
    # a zero weight (supervise only the last stage) is allowed
    CenterNetStackedHead(16, 8, 3, num_stages=2, stage_loss_weights=[0, 1])


def test_cpm_size_refinement_block_keeps_the_map_size_and_widens_context():
    """The CPM-size stage (three 11x11 convs, 128 wide; issue 21) and dilation options."""
    head = CenterNetStackedHead(16, 8, 3, num_stages=2, refine_convs=3, refine_kernel=11,
                                refine_channels=128)
    convs = [m for m in head.refine_blocks[0] if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.out_channels, c.padding) for c in convs] == [
        ((11, 11), 128, (5, 5))] * 3
    dil = CenterNetStackedHead(16, 8, 3, num_stages=2, refine_dilation=3)
    assert dil.refine_blocks[0][0].dilation == (3, 3) and dil.refine_blocks[0][0].padding == (3, 3)
    x = torch.randn(1, 16, 12, 10)
    for h in (head, dil):
        hm, wh, off = h((x, ))
        assert [t.shape[-2:] for t in hm] == [x.shape[-2:]] * 2
    # a pixel's stage-2 heatmap now sees >= 15 pixels away through the refinement block
    x = torch.zeros(1, 16, 41, 41, requires_grad=True)
    head((x, ))[0][1][0, 0, 20, 20].backward()
    seen = x.grad.abs().sum((0, 1)) > 0
    assert seen[20, 20 - 15] and seen[20 + 15, 20]
    with pytest.raises(ValueError, match=r'refine_kernel=4 must be an odd integer'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, refine_kernel=4)
    with pytest.raises(ValueError, match=r'refine_dilation=0 must be an integer >= 1'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, refine_dilation=0)


def test_wrong_losses_are_errors_at_build():
    with pytest.raises(ValueError, match=r"loss_bbox=\{'type': 'L1Loss'\} is not an argument.*"
                       r'loss_wh \(box size\) and loss_offset'):
        CenterNetStackedHead(16, 8, 3, loss_bbox=dict(type='L1Loss'))
    with pytest.raises(ValueError, match=r'loss_wh=GIoULoss does not work on .*use an '
                       r'element-wise regression loss such as L1Loss'):
        CenterNetStackedHead(16, 8, 3, loss_wh=dict(type='GIoULoss'))
    with pytest.raises(ValueError, match=r'loss_offset=IoULoss does not work'):
        CenterNetStackedHead(16, 8, 3, loss_offset=dict(type='IoULoss'))
    with pytest.raises(ValueError, match=r'loss_center_heatmap=.* does not work.*heatmap loss'):
        CenterNetStackedHead(16, 8, 3, loss_center_heatmap=dict(type='GIoULoss'))
    # the losses CenterNet uses, and other element-wise ones, build
    for loss in ('L1Loss', 'SmoothL1Loss', 'MSELoss', 'BalancedL1Loss'):
        CenterNetStackedHead(16, 8, 3, loss_wh=dict(type=loss), loss_offset=dict(type=loss))
