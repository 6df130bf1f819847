"""CenterNet with stacked refinement stages vs mmdet's CenterNetHead."""
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
    with pytest.raises(ValueError, match='refine_convs=0 must be >= 1'):
        CenterNetStackedHead(16, 8, 3, num_stages=2, refine_convs=0)
    head = CenterNetStackedHead(16, 8, 3, num_stages=2)
    with pytest.raises(ValueError, match='one feature map.*got 2 levels'):
        head((torch.rand(1, 16, 8, 8), torch.rand(1, 16, 4, 4)))
