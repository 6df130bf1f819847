"""SNIPER (arXiv:1805.09300): chip generation, dataset wrapper, chip crop, chip inference."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

import mmext  # noqa: F401
from mmext.datasets.proposal_io import load_proposals, save_proposals
from mmext.datasets.sniper import (SNIPER_COCO, SNIPERDataset, check_sniper_params,
                                   chip_annotations, chip_starts, greedy_chips, image_chips,
                                   resolve_scale)
from mmext.datasets.sniper_transforms import SNIPERChipCrop
from mmext.models.detectors.sniper_inference import merge_scale_detections

from conftest import ROOT, run_tool

COCO = dict(chip_size=512, stride=32, scales=SNIPER_COCO['scales'],
            valid_ranges=SNIPER_COCO['valid_ranges'])
FIXED = dict(stride=32, shuffle_ties=False)  # a wrapper whose chips never change
SYN_CFG = 'configs/sniper/faster-rcnn_r18_fpn_sniper_synthetic.py'


def contains(chips, boxes):
    """(n_chips, n_boxes) chip fully contains box."""
    chips, boxes = np.asarray(chips, float), np.asarray(boxes, float)
    return ((boxes[None, :, 0] >= chips[:, None, 0]) & (boxes[None, :, 1] >= chips[:, None, 1]) &
            (boxes[None, :, 2] <= chips[:, None, 2]) & (boxes[None, :, 3] <= chips[:, None, 3]))


def random_boxes(rng, n, w, h, lo=4, hi=400):
    side = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    side = np.minimum(side, min(w, h) - 1)
    x = rng.uniform(0, w - side)
    y = rng.uniform(0, h - side)
    return np.stack([x, y, x + side, y + side], 1)


# ----------------------------------------------------------------------------- chip geometry
def test_chip_starts_grid_plus_border_chip():
    assert chip_starts(1000, 512, 32).tolist() == list(range(0, 488, 32)) + [488]
    assert chip_starts(576, 512, 32).tolist() == [0, 32, 64]  # grid already ends on the border
    assert chip_starts(300, 512, 32).tolist() == [0]  # smaller than a chip: one, padded


def test_greedy_takes_the_chip_covering_most_boxes_first():
    # two boxes close together on the left, one far right: 2 chips, the pair first
    boxes = np.array([[10, 10, 50, 50], [60, 60, 100, 100], [900, 10, 950, 50]], float)
    chips, counts, uncoverable = greedy_chips(boxes, 1000, 200, 512, 32)
    assert counts.tolist() == [2, 1]
    assert chips[0].tolist() == [0, 0, 512, 200]  # clipped to the 200 px high image
    assert contains(chips[1:], boxes[2:]).all()
    assert not uncoverable.any()


def test_fit_scale_and_small_image_give_one_chip_at_origin():
    boxes = np.array([[10, 10, 200, 180]], float)  # 184 px: valid only at 'fit'
    c = image_chips(300, 200, boxes, [False], **COCO)
    fit = c['scale_index'] == 2
    assert c['chips'][fit].tolist() == [[0, 0, 512, 341]]  # 512/300: 300x200 -> 512x341
    assert np.isclose(c['scale'][fit][0], 512 / 300)
    assert not c['negative'].any()


def test_out_of_range_boxes_become_ignore_regions_and_clipping_rule():
    # chip [0, 512] at scale 1 (original pixels = chip pixels)
    boxes = np.array([
        [10, 10, 40, 40],      # inside, valid -> target
        [100, 100, 400, 400],  # 300 px: out of range -> ignore region
        [500, 100, 560, 160],  # crosses x=512: clipped to 12 px wide -> kept
        [506, 100, 560, 160],  # clipped to 6 px (< 10) -> dropped
        [600, 100, 650, 160],  # outside the chip -> dropped
    ], float)
    valid = np.array([True, False, True, True, True])  # assigned to this chip
    keep, clipped, ignore = chip_annotations([0, 0, 512, 512], 1.0, boxes, valid, 10)
    assert keep.tolist() == [0, 1, 2]
    assert ignore.tolist() == [False, True, False]
    np.testing.assert_allclose(clipped[2], [500, 100, 512, 160])
    # at scale 2 the same chip covers original [0, 256]; min size is in chip pixels
    keep, clipped, _ = chip_annotations([0, 0, 512, 512], 2.0, boxes[:1] + [240, 0, 240, 0],
                                        valid[:1], 10)
    assert keep.tolist() == [0] and np.allclose(clipped[0], [250, 10, 256, 40])  # 12 chip px


def test_empty_and_ignore_only_images_get_no_positive_chips():
    c = image_chips(640, 480, np.zeros((0, 4)), np.zeros(0, bool), **COCO)
    assert len(c['chips']) == 0
    c = image_chips(640, 480, np.array([[0, 0, 50, 50]], float), [True], **COCO)
    assert len(c['chips']) == 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(stride=0), 'stride'),
    (dict(stride=(60, 56)), 'lo < hi'),
    (dict(stride=600), 'at most'),
    (dict(scales=(3.0, -1.0, 'fit')), 'positive'),
    (dict(scales=(1.667, 3.0, 'fit')), 'finest first'),
    (dict(scales=('fit', 3.0, 1.667)), 'must come last'),
    (dict(valid_ranges=((0, 80), (32, 150))), '2 ranges for 3 scales'),
    (dict(valid_ranges=((0, 80), (90, 150), (120, 1e5))), 'gap'),
    (dict(valid_ranges=((32, 150), (0, 80), (120, 1e5))), 'non-decreasing'),
    (dict(valid_ranges=((0, 80), (150, 32), (120, 1e5))), 'lo < hi'),
    (dict(valid_ranges=((0, 200), (32, 250), (120, 1e5))), 'larger than chip_size'),
])
def test_bad_parameters_are_clear_errors(kwargs, match):
    args = dict(COCO, **kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        check_sniper_params(args['chip_size'], args['stride'], args['scales'],
                            args['valid_ranges'])


# ----------------------------------------------------------------------------- dataset wrapper
class _Images:
    """A minimal inner dataset: three images with hand-built annotations."""
    metainfo = dict(classes=('a', 'b'))

    def __init__(self):
        self.infos = [
            dict(img_id=1, img_path='x', width=640, height=480, instances=[
                dict(bbox=[10, 10, 30, 30], bbox_label=0, ignore_flag=0),
                dict(bbox=[100, 100, 400, 400], bbox_label=1, ignore_flag=0)]),
            dict(img_id=2, img_path='y', width=640, height=480, instances=[]),
            dict(img_id=3, img_path='z', width=1333, height=800, instances=[
                dict(bbox=[1200, 700, 1230, 730], bbox_label=0, ignore_flag=0)]),
        ]
        self.pipeline = lambda info: info

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, i):
        return dict(self.infos[i], instances=[dict(x) for x in self.infos[i]['instances']])


def _proposals(tmp_path):
    rng = np.random.RandomState(0)
    props = {}
    for img_id, (w, h) in [(1, (640, 480)), (2, (640, 480)), (3, (1333, 800))]:
        p = random_boxes(rng, 400, w, h, 10, 200)
        props[img_id] = [np.concatenate([p, rng.uniform(0, 1, (len(p), 1))], 1)] * 3
    return save_proposals(str(tmp_path / 'props.npz'), SNIPER_COCO['scales'], props)


def test_wrapper_items_carry_chip_ignore_flags_and_resample_negatives(tmp_path):
    ds = SNIPERDataset(_Images(), proposal_file=_proposals(tmp_path), neg_per_image=2,
                       neg_min_proposals=(3, 3, 3), seed=0)
    assert ds.num_positive > 0 and len(ds) > ds.num_positive
    imgs = [ds.get_chip(i)[0] for i in range(len(ds))]
    assert 1 not in imgs[:ds.num_positive]  # the empty image has no positive chip
    seen = set()
    for i in range(ds.num_positive):
        info = ds.get_data_info(i)
        k = info['sniper_chip']['scale_index']
        for inst in info['instances']:
            x1, y1, x2, y2 = inst['bbox']
            side = np.sqrt((x2 - x1) * (y2 - y1))
            lo, hi = SNIPER_COCO['valid_ranges'][k]
            # the 300 px box is ignored at scales 0, 1 and a target at 'fit'
            if inst['bbox_label'] == 1:
                assert inst['ignore_flag'] == int(k < 2)
                seen.add(k)
            if inst['ignore_flag'] == 0:  # official: no lower bound below the coarsest
                assert (side < hi + 1e-6) if k < 2 else (side >= lo)
    assert seen == {0, 2}  # an ignore region in a fine chip, a target in the 'fit' chip
    negs = lambda d: [tuple(d.get_chip(i)[1]) + (d.get_chip(i)[0], )  # noqa: E731
                      for i in range(d.num_positive, len(d))]
    again = SNIPERDataset(_Images(), proposal_file=_proposals(tmp_path), neg_per_image=2,
                          neg_min_proposals=(3, 3, 3), seed=0)
    assert negs(ds) == negs(again)  # same seed, same chips
    pos = lambda d: [tuple(d.get_chip(i)[1]) for i in range(d.num_positive)]  # noqa: E731
    assert pos(ds) == pos(again)
    fixed = SNIPERDataset(_Images(), proposal_file=_proposals(tmp_path), neg_per_image=2,
                          neg_min_proposals=(3, 3, 3), seed=0, **FIXED)
    picks = {tuple(negs(fixed))}
    for epoch in range(1, 6):
        fixed.set_epoch(epoch)
        picks.add(tuple(negs(fixed)))
    assert len(picks) > 1  # negatives are resampled across epochs
    assert len({len(p) for p in picks}) == 1  # with a fixed stride and tie order len() is fixed


def test_epoch_hook_reaches_a_wrapped_sniper_dataset():
    from types import SimpleNamespace

    from mmext.datasets.sniper import SNIPEREpochHook
    ds = SNIPERDataset(_Images())
    outer = SimpleNamespace(dataset=ds)  # e.g. a further wrapper
    runner = SimpleNamespace(epoch=3, train_dataloader=SimpleNamespace(dataset=outer))
    SNIPEREpochHook().before_train_epoch(runner)
    assert ds.epoch == 3


def test_wrapper_rejects_mismatched_proposal_scales(tmp_path):
    path = save_proposals(str(tmp_path / 'p.npz'), (2.0, 1.0, 'fit'), {1: [None] * 3})
    with pytest.raises(ValueError, match='scales'):
        SNIPERDataset(_Images(), proposal_file=path)


# ----------------------------------------------------------------------------- official rules
def _boxes_inside(chips, boxes):
    return contains(chips, boxes).any(0)


@pytest.mark.parametrize('w, h, box', [
    (640, 480, [300, 380, 400, 480]),   # bottom border, 1.667: 480 * 1.667 = 800.16 -> 800 px
    (500, 375, [300, 300, 360, 375]),   # bottom border at scales 3.0 and 1.667
    (375, 500, [300, 440, 375, 500]),   # bottom-right corner
    (640, 480, [600, 400, 700, 520]),   # partly outside the image: covered through its part
])
def test_border_and_partly_outside_boxes_get_a_positive_chip(w, h, box):
    c = image_chips(w, h, np.array([box], float), [False], **COCO)
    clipped = np.minimum(np.maximum(np.array(box, float), 0), [w, h, w, h])
    side = np.sqrt((clipped[2] - clipped[0]) * (clipped[3] - clipped[1]))
    scales = [k for k, (lo, hi) in enumerate(COCO['valid_ranges']) if lo <= side < hi]
    assert scales and sorted(set(c['scale_index'].tolist())) == scales
    for k in scales:
        s = c['scale'][c['scale_index'] == k][0]
        sw, sh = round(w * s), round(h * s)
        scaled = np.minimum(clipped * s, [sw, sh, sw, sh])
        assert _boxes_inside(c['chips'][c['scale_index'] == k], scaled[None]).all()


@pytest.mark.parametrize('box', [[10, 10, 10, 50], [50, 50, 20, 20], [np.nan, 0, 5, 5],
                                 [0, 0, np.inf, 30], [700, 10, 800, 60]])  # last: outside
def test_degenerate_boxes_never_create_chips_or_targets(box):
    c = image_chips(640, 480, np.array([box], float), [False], **COCO)
    assert len(c['chips']) == 0
    ds = SNIPERDataset(_Single(640, 480, [box, [100, 100, 140, 140]]), **FIXED)
    for i in range(len(ds)):
        for inst in ds.get_data_info(i)['instances']:
            assert inst['bbox_label'] == 1 or inst['ignore_flag'] == 1
            assert np.isfinite(inst['bbox']).all()


def test_long_thin_box_fits_no_chip_so_it_is_valid_nowhere():
    # 400x20: sqrt(area) 89 is in scale 1.667's range, but 400 * 1.667 > 512 - 32 - 1
    box = [[100, 100, 500, 120]]
    c = image_chips(4000, 300, np.array(box, float), [False], **COCO)
    assert len(c['chips']) == 0
    ds = SNIPERDataset(_Single(4000, 300, box + [[1000, 100, 1040, 140]]), **FIXED)
    assert len(ds) > 0
    for i in range(len(ds)):
        for inst in ds.get_data_info(i)['instances']:
            if inst['bbox_label'] == 0:
                assert inst['ignore_flag'] == 1  # never a (partial) positive


def test_finest_scale_needs_two_pixels_each_way():
    c = image_chips(640, 480, np.array([[10, 10, 11.5, 40]]), [False], **COCO)  # 1.5 x 30
    assert len(c['chips']) == 0
    c = image_chips(640, 480, np.array([[10, 10, 12, 40]]), [False], **COCO)  # 2 x 30
    assert c['scale_index'].tolist() == [0]


def test_a_clipped_piece_of_a_box_assigned_elsewhere_is_ignored_not_positive():
    # at scale 1.667 no 512 px chip holds both boxes (A x 17-100, B x 467-550 scaled): two
    # chips, each holding one box whole and a piece of the other
    boxes = [[10, 10, 60, 60], [280, 10, 330, 60]]  # labels 0 (A), 1 (B)
    ds = SNIPERDataset(_Single(1000, 300, boxes), scales=(1.667, 'fit'),
                       valid_ranges=((32, 150), (120, 1e5)), neg_min_proposals=(10, 10),
                       **FIXED)
    assert len(ds) == 2
    targets, pieces = {0: [], 1: []}, {0: [], 1: []}
    for i in range(len(ds)):
        for inst in ds.get_data_info(i)['instances']:
            (pieces if inst['ignore_flag'] else targets)[inst['bbox_label']].append(
                inst['bbox'])
    for label in (0, 1):
        assert len(targets[label]) == 1  # one chip trains the box ...
        np.testing.assert_allclose(targets[label][0], boxes[label])  # ... whole
        assert len(pieces[label]) == 1  # the other chip sees a piece: ignore region


class _Single:
    """An inner dataset of one image (or several, given lists)."""
    metainfo = dict(classes=('a', 'b'))

    def __init__(self, w, h, boxes, ids=None):
        self.infos = [dict(img_id=1 if ids is None else ids, img_path='x', width=w, height=h,
                           instances=[dict(bbox=list(b), bbox_label=int(j == len(boxes) - 1),
                                           ignore_flag=0) for j, b in enumerate(boxes)])]
        self.pipeline = lambda info: info

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, i):
        return dict(self.infos[i], instances=[dict(x) for x in self.infos[i]['instances']])


class _Many(_Single):
    def __init__(self, images):
        self.infos = [dict(img_id=i, img_path='x', width=w, height=h,
                           instances=[dict(bbox=list(b), bbox_label=0, ignore_flag=0)
                                      for b in boxes]) for i, (w, h, boxes) in enumerate(images)]
        self.pipeline = lambda info: info


@pytest.mark.parametrize('seed', [0, 1])
def test_property_every_valid_box_is_inside_exactly_one_positive_chip_of_its_scale(seed):
    from mmext.datasets.sniper import clip_boxes, valid_boxes
    rng = np.random.RandomState(seed)
    images = []
    for _ in range(40):
        w, h = int(rng.randint(200, 2500)), int(rng.randint(200, 2500))
        n = int(rng.randint(0, 40))
        b = random_boxes(rng, n, w, h, 1, 700)
        b += rng.normal(0, 30, b.shape) * (rng.rand(n, 1) < 0.2)  # some cross the border
        images.append((w, h, b))
    ds = SNIPERDataset(_Many(images), seed=seed)  # official defaults: drawn stride, ties
    stride = ds._table(0)['stride']
    assert 56 <= stride < 60
    n_valid = 0
    for idx, (w, h, b) in enumerate(images):
        chips = [i for i in range(len(ds)) if ds.get_chip(i)[0] == idx]
        cb = clip_boxes(b, w, h)
        for k, (s_spec, r) in enumerate(zip(ds.scales, ds.valid_ranges)):
            s = resolve_scale(s_spec, w, h, 512)
            valid = valid_boxes(cb, k, 3, s, r, 512, stride)
            mine = [i for i in chips if ds.get_chip(i)[3] == k]
            owners = np.zeros(len(b), int)
            for i in mine:
                tgt = ds._table(0)['targets'][i]
                owners[tgt] += 1
                chip = ds.get_chip(i)[1]
                sw, sh = round(w * s), round(h * s)
                scaled = np.minimum(cb[tgt] * s, [sw, sh, sw, sh])
                inside = contains(chip[None], scaled)[0]
                assert inside[valid[tgt]].all()  # valid targets lie wholly in their chip
            assert (owners[valid] == 1).all()  # one chip per valid box
            assert (owners <= 1).all()
            n_valid += valid.sum()
    assert n_valid > 300


def test_stride_is_redrawn_per_epoch_reproducibly_and_ties_shuffled():
    images = [(1333, 800, random_boxes(np.random.RandomState(i), 30, 1333, 800, 8, 300))
              for i in range(6)]
    ds = SNIPERDataset(_Many(images), seed=3)
    strides = [ds.stride_of(e) for e in range(12)]
    assert set(strides) <= {56, 57, 58, 59} and len(set(strides)) > 1
    chips = lambda d, e: [tuple(d.get_chip((e, i))[1]) + (d.get_chip((e, i))[0], )  # noqa
                          for i in range(d.num_chips(e))]
    again = SNIPERDataset(_Many(images), seed=3)
    assert chips(ds, 0) == chips(again, 0) and chips(ds, 5) == chips(again, 5)
    assert chips(ds, 0) != chips(ds, 1)  # positive chips change between epochs
    other = SNIPERDataset(_Many(images), seed=4)
    assert [other.stride_of(e) for e in range(12)] != strides
    # a fixed stride with shuffled ties still changes the chips
    ties = SNIPERDataset(_Many(images), stride=32, seed=3)
    assert chips(ties, 0) != chips(ties, 1)
    fixed = SNIPERDataset(_Many(images), **FIXED)
    assert chips(fixed, 0) == chips(fixed, 1) and not fixed.resamples


def _item_key(item):
    c = item['sniper_chip']
    return (item['img_id'], tuple(c['box']), c['negative'])


def test_negatives_change_between_epochs_with_persistent_workers(tmp_path):
    from torch.utils.data import DataLoader

    from mmext.datasets.sniper import SNIPERSampler
    ds = SNIPERDataset(_Images(), proposal_file=_proposals(tmp_path), neg_per_image=1,
                       neg_min_proposals=(3, 3, 3), seed=0, stride=32)
    sampler = SNIPERSampler(ds, shuffle=False, seed=0)
    loader = DataLoader(ds, batch_size=1, sampler=sampler, num_workers=1,
                        persistent_workers=True, collate_fn=lambda x: x[0])
    epochs = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        epochs.append(sorted(_item_key(x) for x in loader if x['sniper_chip']['negative']))
        assert len(epochs[-1]) == sum(ds.get_chip((epoch, i))[4]
                                      for i in range(ds.num_chips(epoch)))
    assert len({tuple(e) for e in epochs}) > 1  # the persistent worker saw the new epochs


def test_epoch_hook_refuses_persistent_workers_with_a_plain_sampler():
    from types import SimpleNamespace

    from mmengine.dataset import DefaultSampler

    from mmext.datasets.sniper import SNIPEREpochHook, SNIPERSampler
    ds = SNIPERDataset(_Images())
    for sampler, persistent, ok in [(DefaultSampler(ds, seed=0), True, False),
                                    (DefaultSampler(ds, seed=0), False, True),
                                    (SNIPERSampler(ds, seed=0), True, True)]:
        loader = SimpleNamespace(dataset=ds, sampler=sampler, persistent_workers=persistent)
        runner = SimpleNamespace(train_dataloader=loader)
        if ok:
            SNIPEREpochHook().before_train(runner)
        else:
            with pytest.raises(ValueError, match='SNIPERSampler'):
                SNIPEREpochHook().before_train(runner)
    fixed = SNIPERDataset(_Images(), **FIXED)  # nothing changes per epoch: allowed
    loader = SimpleNamespace(dataset=fixed, sampler=DefaultSampler(fixed, seed=0),
                             persistent_workers=True)
    SNIPEREpochHook().before_train(SimpleNamespace(train_dataloader=loader))


def _props(boxes, score=0.9):
    b = np.asarray(boxes, float)
    return np.concatenate([b, np.full((len(b), 1), score)], 1)


def test_negative_chips_drop_proposals_that_overlap_a_positive_chip():
    from mmext.datasets.sniper import negative_chips, positive_chips
    w, h = 1200, 512
    pos = positive_chips(w, h, np.array([[20, 20, 60, 60]]), 1.0, (0, 150), 512, 32)
    assert pos.tolist() == [[0, 0, 512, 512]]
    # 40 proposals straddling the positive chip's right border (x = 512): overlap, not inside
    rng = np.random.RandomState(0)
    x = rng.uniform(480, 500, 40)
    straddle = np.stack([x, np.full(40, 100.), x + 60, np.full(40, 160.)], 1)
    far = straddle + [600, 0, 600, 0]
    neg = negative_chips(w, h, _props(straddle), pos, 1.0, (0, 150), 512, 32, 300, 10)
    assert len(neg) == 0  # official: overlapping proposals are covered by the positive chip
    neg = negative_chips(w, h, _props(np.concatenate([straddle, far])), pos, 1.0, (0, 150),
                         512, 32, 300, 10)
    assert len(neg) == 1 and contains(neg, far).all()


def test_proposals_are_pooled_over_scales_and_filtered_by_each_scales_range(tmp_path):
    # small proposals, stored only under the coarsest scale's slot, give a finest-scale chip
    rng = np.random.RandomState(0)
    small = random_boxes(rng, 60, 200, 200, 8, 30) + [900, 500, 900, 500]
    path = save_proposals(str(tmp_path / 'p.npz'), SNIPER_COCO['scales'],
                          {1: [None, None, _props(small)]})
    ds = SNIPERDataset(_Single(1333, 800, [[10, 10, 40, 40]]), proposal_file=path,
                       neg_min_proposals=(25, 10, 10), **FIXED)
    negs = [ds.get_chip(i) for i in range(len(ds)) if ds.get_chip(i)[4]]
    # at 3.0 and 1.667, where 8-30 px proposals are valid (official: no lower bound below the
    # coarsest scale), not at 'fit' whose slot held them
    assert sorted(n[3] for n in negs) == [0, 1]


def test_proposals_matching_no_image_warn_with_counts(tmp_path):
    path = save_proposals(str(tmp_path / 'p.npz'), SNIPER_COCO['scales'],
                          {99: [_props([[0, 0, 10, 10]])] * 3})
    with pytest.warns(UserWarning, match='proposals for 0 of the 3 images'):
        SNIPERDataset(_Images(), proposal_file=path)


def test_assigner_ignores_anchors_by_iou_with_invalid_boxes_as_official():
    from mmdet.models.task_modules.assigners import MaxIoUAssigner

    from mmext.models.detectors.sniper_assigner import SNIPERMaxIoUAssigner
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 40., 40.]]), labels=torch.tensor([0]))
    ign = InstanceData(bboxes=torch.tensor([[100., 100., 200., 200.]]))
    priors = torch.tensor([[0., 0., 40., 40.],        # the target: positive
                           [100., 100., 160., 160.],  # IoU 0.36 with the ignore box, IoF 1
                           [60., 60., 200., 200.],    # IoU 0.51, IoF 0.51
                           [150., 150., 260., 260.],  # IoU 0.13, IoF 0.21: negative
                           [300., 300., 340., 340.]])
    pred = InstanceData(priors=priors)
    kw = dict(pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0.3)
    got = SNIPERMaxIoUAssigner(ignore_iou_thr=0.3, **kw).assign(pred, gt, ign).gt_inds
    assert got.tolist() == [1, -1, -1, 0, 0]
    # without targets the ignore rule still holds (mmdet would make every prior background)
    empty = InstanceData(bboxes=torch.zeros((0, 4)), labels=torch.zeros(0, dtype=torch.long))
    got = SNIPERMaxIoUAssigner(ignore_iou_thr=0.3, **kw).assign(pred, empty, ign).gt_inds
    assert got.tolist() == [0, -1, -1, 0, 0]
    # mmdet's IoF 0.5 rule ignores differently: a small anchor inside, not a large one
    iof = MaxIoUAssigner(ignore_iof_thr=0.9, **kw).assign(pred, gt, ign).gt_inds
    assert iof.tolist() == [1, -1, 0, 0, 0]


# ----------------------------------------------------------------------------- crop transform
def test_chip_crop_maps_pixels_boxes_and_meta():
    from mmdet.structures.bbox import HorizontalBoxes
    img = np.zeros((400, 600, 3), np.uint8)
    img[100:140, 300:360] = 255  # the object
    results = dict(img=img, img_shape=(400, 600), ori_shape=(400, 600),
                   gt_bboxes=HorizontalBoxes(np.array([[300, 100, 360, 140]], np.float32)),
                   gt_ignore_flags=np.array([False]),
                   sniper_chip=dict(box=[512, 160, 768, 416], scale=2.0))
    out = SNIPERChipCrop()(results)
    assert out['img'].shape == (256, 256, 3)
    assert out['img_shape'] == (256, 256) and out['scale_factor'] == (2.0, 2.0)
    assert out['ori_shape'] == (400, 600)
    box = out['gt_bboxes'].tensor[0].numpy()
    np.testing.assert_allclose(box, [88, 40, 208, 120])
    x0, y0, x1, y1 = box.astype(int)
    assert out['img'][y0 + 2:y1 - 2, x0 + 2:x1 - 2].min() == 255  # the object is there
    assert out['img'][:y0 - 2].max() == 0
    # downscaling: the whole image at 0.5, chip clipped to the 300x200 scaled image
    results = dict(img=img, gt_bboxes=HorizontalBoxes(np.array([[300, 100, 360, 140]],
                                                               np.float32)),
                   sniper_chip=dict(box=[0, 0, 300, 200], scale=0.5))
    out = SNIPERChipCrop()(results)
    assert out['img'].shape == (200, 300, 3) and out['img_shape'] == (200, 300)
    np.testing.assert_allclose(out['gt_bboxes'].tensor[0].numpy(), [150, 50, 180, 70])


@pytest.mark.parametrize('scale', [2.0, 3.0])  # exact scales: cv2.resize uses size ratios
def test_chip_crop_equals_resizing_the_whole_image_then_cropping(scale):
    import cv2
    img = np.random.RandomState(0).randint(0, 255, (50, 70, 3)).astype(np.uint8)
    box = [10, 6, 74, 70]
    out = SNIPERChipCrop()(dict(img=img, sniper_chip=dict(box=box, scale=scale)))['img']
    sw, sh = round(70 * scale), round(50 * scale)
    ref = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR)[6:70, 10:74]
    # same pixel-centre convention: only cv2's fixed-point rounding differs (a one-pixel shift
    # gives a mean difference of ~23 grey levels on this noise)
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 4 and diff.mean() < 1.5


def test_chip_crop_without_chip_is_a_clear_error():
    with pytest.raises(KeyError, match='SNIPERDataset'):
        SNIPERChipCrop()(dict(img=np.zeros((4, 4, 3), np.uint8)))


@pytest.mark.parametrize('kind', ['polygon', 'bitmap'])
@pytest.mark.parametrize('scale, box', [(2.0, [512, 160, 768, 416]), (0.5, [0, 0, 300, 200])])
def test_chip_crop_scales_and_crops_masks_with_the_chip(kind, scale, box):
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks, PolygonMasks
    img = np.zeros((400, 600, 3), np.uint8)
    obj = [300, 100, 360, 140]
    poly = [np.array([300, 100, 360, 100, 360, 140, 300, 140], float)]
    # a second object only partly inside the upscaled chip (x 240-280 -> 480-560)
    poly2 = [np.array([240, 150, 280, 150, 280, 190, 240, 190], float)]
    masks = PolygonMasks([poly, poly2], 400, 600)
    if kind == 'bitmap':
        masks = BitmapMasks(masks.to_ndarray(), 400, 600)
    results = dict(img=img, gt_masks=masks,
                   gt_bboxes=HorizontalBoxes(np.array([obj, [240, 150, 280, 190]], np.float32)),
                   sniper_chip=dict(box=box, scale=scale))
    out = SNIPERChipCrop()(results)
    m = out['gt_masks']
    assert type(m) is type(masks) and (m.height, m.width) == out['img'].shape[:2]
    dense = m.to_ndarray() if kind == 'polygon' else m.masks
    for i in range(2):
        x1, y1, x2, y2 = out['gt_bboxes'].tensor[i].numpy()
        ys, xs = np.nonzero(dense[i])
        assert len(xs)
        # the mask fills its (clipped, scaled) box, to a pixel
        assert abs(xs.min() - x1) <= 1 and abs(xs.max() + 1 - x2) <= 1
        assert abs(ys.min() - y1) <= 1 and abs(ys.max() + 1 - y2) <= 1
        assert abs(dense[i].sum() - (x2 - x1) * (y2 - y1)) <= 2 * ((x2 - x1) + (y2 - y1))


def test_wrapper_keeps_mask_annotations_for_the_chip():
    ds = SNIPERDataset(_Single(640, 480, [[100, 100, 140, 140]]), **FIXED)
    ds.dataset.infos[0]['instances'][0]['mask'] = [[100, 100, 140, 100, 140, 140, 100, 140]]
    info = ds.get_data_info(0)
    assert info['instances'][0]['mask'] == [[100, 100, 140, 100, 140, 140, 100, 140]]


# ----------------------------------------------------------------------------- chip inference
def _inst(boxes, scores, labels):
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                        scores=torch.tensor(scores), labels=torch.tensor(labels))


def test_merge_keeps_each_scales_range_then_suppresses():
    fine = _inst([[0, 0, 20, 20], [0, 0, 200, 200]], [0.9, 0.8], [0, 0])   # 200 px: out
    coarse = _inst([[1, 1, 21, 21], [0, 0, 202, 202]], [0.7, 0.6], [0, 0])  # 20 px: out
    ranges = ((0, 90), (75, 1e5))
    out = merge_scale_detections([fine, coarse], ranges, dict(type='nms', iou_threshold=0.5))
    np.testing.assert_allclose(out.bboxes.numpy(), [[0, 0, 20, 20], [0, 0, 202, 202]])
    np.testing.assert_allclose(out.scores.numpy(), [0.9, 0.6])
    # overlapping same-class boxes from two scales: NMS keeps one, soft-NMS decays the other
    a = _inst([[0, 0, 80, 80]], [0.9], [1])
    b = _inst([[2, 2, 82, 82]], [0.8], [1])
    hard = merge_scale_detections([a, b], ((0, 90), (0, 1e5)), dict(type='nms', iou_threshold=0.5))
    assert len(hard.scores) == 1
    soft = merge_scale_detections([a, b], ((0, 90), (0, 1e5)),
                                  dict(type='soft_nms', iou_threshold=0.3, sigma=0.55,
                                       min_score=1e-3, method='gaussian'))
    iou = (78 * 78) / (2 * 80 * 80 - 78 * 78)
    np.testing.assert_allclose(soft.scores.numpy(), [0.9, 0.8 * np.exp(-iou ** 2 / 0.55)],
                               rtol=1e-4)
    with pytest.raises(ValueError, match='one range per scale'):
        merge_scale_detections([a], ranges, None)


class _Detector(torch.nn.Module):
    """Records the post-processing test_cfg it runs with; one box per view."""

    def __init__(self):
        super().__init__()
        from mmengine.config import ConfigDict
        self.roi_head = torch.nn.Module()
        self.roi_head.test_cfg = ConfigDict(score_thr=0.05, nms=dict(type='nms',
                                                                     iou_threshold=0.5),
                                            max_per_img=100)
        self.seen = []

    def test_step(self, data):
        from mmdet.structures import DetDataSample
        self.seen.append(dict(self.roi_head.test_cfg))
        out = []
        for sample in data['data_samples']:
            s = sample.clone()
            s.pred_instances = _inst([[10, 10, 50, 50]], [0.9], [0])
            out.append(s)
        return out


def _views(n_views, ori=(300, 400)):
    from mmdet.structures import DetDataSample
    views = []
    for v in range(n_views):
        s = DetDataSample(metainfo=dict(ori_shape=ori, img_shape=(ori[0] * (v + 1), ori[1] *
                                                                   (v + 1)),
                                        scale_factor=(v + 1.0, v + 1.0)))
        views.append(s)
    return dict(inputs=[[torch.zeros(3, 4, 4)] for _ in views],
                data_samples=[[s] for s in views])


def test_tta_uses_the_official_per_scale_post_processing_and_the_original_meta():
    from mmext.models.detectors.sniper_inference import SNIPERTTAModel
    det = _Detector()
    tta = SNIPERTTAModel(det, test_ranges=((0, 90), (32, 180)))
    out = tta.test_step(_views(2))
    assert len(det.seen) == 2
    for cfg in det.seen:  # lib/inference.py: scores > 1e-3, soft-NMS, 200 per scale
        assert cfg['score_thr'] == 1e-3 and cfg['max_per_img'] == 200
        assert cfg['nms']['type'] == 'soft_nms' and cfg['nms']['sigma'] == 0.55
    assert det.roi_head.test_cfg.score_thr == 0.05  # restored afterwards
    assert det.roi_head.test_cfg.nms['type'] == 'nms'
    assert out[0].img_shape == (300, 400) and out[0].scale_factor == (1.0, 1.0)
    assert out[0].ori_shape == (300, 400)
    keep = SNIPERTTAModel(_Detector(), test_ranges=((0, 90), (32, 180)), per_scale=None)
    keep.test_step(_views(2))
    assert keep.module.seen[0]['score_thr'] == 0.05


def test_tta_refuses_a_one_view_batch_or_warns_when_allowed():
    from mmext.models.detectors.sniper_inference import SNIPERTTAModel
    plain = dict(inputs=[torch.zeros(3, 4, 4)], data_samples=[_views(1)['data_samples'][0][0]])
    with pytest.raises(ValueError, match='TestTimeAug'):
        SNIPERTTAModel(_Detector()).test_step(plain)
    with pytest.warns(UserWarning, match='single'):
        out = SNIPERTTAModel(_Detector(), allow_single_view=True).test_step(plain)
    assert len(out) == 1


def test_merge_range_is_lo_exclusive_hi_inclusive_as_official():
    a = _inst([[0, 0, 32, 32], [0, 0, 33, 33], [100, 100, 280, 280]], [0.9, 0.8, 0.7], [0, 0, 0])
    out = merge_scale_detections([a], ((32, 180), ), None)
    np.testing.assert_allclose(out.scores.numpy(), [0.8, 0.7])  # 32 out, 33 and 180 in


class _SquareFinder(torch.nn.Module):
    """A 'detector' that finds white squares exactly (connected components): checks tiling."""

    def __init__(self):
        super().__init__()
        self.calls, self.tiles = 0, 0

    def test_step(self, data):
        import cv2
        self.calls += 1
        out = []
        for inp, sample in zip(data['inputs'], data['data_samples']):
            self.tiles += 1
            img = inp[0].numpy()
            assert tuple(img.shape) == tuple(sample.img_shape)
            n, _, stats, _ = cv2.connectedComponentsWithStats((img > 128).astype(np.uint8))
            b = [[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:]]
            s = sample.clone()
            s.pred_instances = _inst(np.array(b, np.float32).reshape(-1, 4), [0.9] * len(b),
                                     [0] * len(b))
            out.append(s)
        return out


def _squares_image(w, h, boxes):
    img = np.zeros((h, w, 3), np.uint8)
    for x1, y1, x2, y2 in boxes:
        img[y1:y2, x1:x2] = 255
    return img


@pytest.mark.parametrize('scale', [1.0, 2.0, 0.5])
def test_tiled_inference_finds_every_object_once_across_tile_borders(scale):
    from mmext.models.detectors.sniper_tiled import sniper_tiled_inference, tile_grid
    w, h = 1500, 900
    rng = np.random.RandomState(0)
    boxes = []
    while len(boxes) < 25:  # non-touching squares of 20-60 px, many across tile borders
        side = int(rng.randint(20, 60))
        x, y = int(rng.randint(0, w - side)), int(rng.randint(0, h - side))
        b = [x, y, x + side, y + side]
        if all(b[0] > o[2] + 4 or b[2] < o[0] - 4 or b[1] > o[3] + 4 or b[3] < o[1] - 4
               for o in boxes):
            boxes.append(b)
    boxes += [[0, 0, 30, 30], [w - 40, h - 40, w, h]]  # on the image border
    img = _squares_image(w, h, boxes)
    det = _SquareFinder()
    stride = int(256 - (60 * scale + 20))  # tiles overlap by the largest object + 2 * delta
    out = sniper_tiled_inference(det, img, scales=(scale, ), test_ranges=((0, 1e5), ),
                                 chip_size=256, stride=stride, batch_size=4)
    n_tiles = len(tile_grid(round(w * scale), round(h * scale), 256, stride))
    assert det.tiles == n_tiles > 1 and det.calls == -(-n_tiles // 4)
    strong = out.bboxes[out.scores > 0.5].numpy()
    assert len(strong) == len(boxes)  # each object once (duplicates decayed by soft-NMS)
    tol = 1.0 / scale + 0.01
    for b in boxes:
        assert np.abs(strong - np.array(b, float)).max(1).min() <= tol


def test_tiled_inference_is_a_test_loop_for_tools_test(synthetic_root):
    from mmdet.registry import LOOPS
    from mmengine.config import Config

    import mmext.models.detectors.sniper_tiled  # noqa: F401
    cfg = Config.fromfile(osp.join(ROOT, 'configs/sniper/faster-rcnn_r18_fpn_sniper_tiled_'
                                   'synthetic.py'))
    assert cfg.test_cfg.type == 'SNIPERTiledTestLoop'
    assert LOOPS.get('SNIPERTiledTestLoop') is not None
    assert not any(t['type'] in ('Resize', 'TestTimeAug')
                   for t in cfg.test_dataloader.dataset.pipeline)


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize('name', ['faster-rcnn_r50_fpn_sniper_1x_coco',
                                  'retinanet_r50_fpn_sniper_1x_coco',
                                  'mask-rcnn_r50_fpn_sniper_1x_coco'])
def test_coco_configs_use_the_paper_settings(name):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs/sniper', name + '.py'))
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'SNIPERDataset' and ds.chip_size == 512 and tuple(ds.stride) == (56, 60)
    assert cfg.train_dataloader.sampler.type == 'SNIPERSampler'
    assert tuple(ds.scales) == (3.0, 1.667, 'fit')
    assert cfg.test_cfg.type == 'SNIPERTestLoop' and cfg.test_cfg.nms.sigma == 0.55
    assert cfg.test_cfg.max_per_img == 200
    views = cfg.test_dataloader.dataset.pipeline[1].transforms[0]
    assert len(views) == len(cfg.test_cfg.test_ranges) == 3


@pytest.mark.parametrize('cfg_path',
                         [SYN_CFG, 'configs/sniper/retinanet_r18_fpn_sniper_synthetic.py',
                          'configs/sniper/mask-rcnn_r18_fpn_sniper_synthetic.py',
                          'configs/sniper/centernet_spinenet-49s_sniper_synthetic.py'])
def test_synthetic_config_builds_and_trains_one_iteration(cfg_path, synthetic_root):
    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(ROOT, cfg_path))
    cfg.train_dataloader.dataset.dataset.indices = 2
    model = MODELS.build(cfg.model)
    model.init_weights()
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([ds[i] for i in range(2)])
    for s in batch['data_samples']:
        assert s.img_shape[0] <= 256 and s.img_shape[1] <= 256
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    params = [p.detach().clone() for p in model.parameters()]
    losses = model.train_step(batch, optim)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    assert any(not torch.equal(a, b) for a, b in zip(params, model.parameters()))
    if 'mask-rcnn' in cfg_path:  # masks travel with the chips
        assert torch.isfinite(losses['loss_mask'])
        for s in batch['data_samples']:
            m = s.gt_instances.masks
            assert (m.height, m.width) == tuple(s.img_shape)
            assert len(m) == len(s.gt_instances.bboxes)


@pytest.mark.slow
def test_synthetic_sniper_trains_tests_with_chip_inference_and_mines_negatives(
        tmp_path, python, synthetic_root):
    work = str(tmp_path)
    r = run_tool([python, 'tools/train.py', SYN_CFG, '--work-dir', work, '--cfg-options',
                  'train_cfg.max_epochs=1', 'train_dataloader.dataset.dataset.indices=3',
                  'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                  'val_dataloader.dataset.indices=2',
                  'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
                  'default_hooks.logger.interval=1'])
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    r = run_tool([python, 'tools/test.py', SYN_CFG, ckpt, '--work-dir', work, '--cfg-options',
                  'test_dataloader.dataset.indices=3', 'test_dataloader.num_workers=0',
                  'test_dataloader.persistent_workers=False'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'coco/bbox_mAP' in r.stdout + r.stderr and 'Epoch(test) [3/3]' in r.stdout + r.stderr
    props = osp.join(work, 'props.npz')
    r = run_tool([python, 'tools/sniper_proposals.py', SYN_CFG, ckpt, '--out', props,
                  '--limit', '3'])
    assert r.returncode == 0, r.stderr[-3000:]
    scales, proposals = load_proposals(props)
    assert scales == (2.0, 1.0, 'fit') and len(proposals) == 3
    assert all(a.shape[1] == 5 and len(a) <= 300 for v in proposals.values() for a in v)
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, SYN_CFG))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.dataset.indices = 3
    ds_cfg.update(proposal_file=props, neg_min_proposals=(1, 1, 1))
    from mmdet.registry import DATASETS
    ds = DATASETS.build(ds_cfg)
    assert len(ds) > ds.num_positive  # negative chips were mined from the proposals
    item = ds[len(ds) - 1]
    assert item['inputs'].shape[0] == 3


# ----------------------------------------------------------------------------- proposal files
class _Payload:
    """Pickles to a call of os.system that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f'touch {self.marker}', )


def test_proposal_file_round_trip_keeps_ids_scales_and_boxes(tmp_path):
    rng = np.random.RandomState(1)
    props = {7: [rng.rand(4, 5), None, np.zeros((0, 5))], 9: [rng.rand(1, 5)] * 3}
    path = save_proposals(str(tmp_path / 'p.npz'), (3.0, 1.667, 'fit'), props)
    scales, back = load_proposals(path)
    assert scales == (3.0, 1.667, 'fit')
    assert sorted(back) == [7, 9] and back[7][1] is None and back[7][2].shape == (0, 5)
    np.testing.assert_allclose(back[7][0], props[7][0], rtol=1e-6)
    with pytest.raises(ValueError, match=r'must end in \.npz'):
        save_proposals(str(tmp_path / 'p.pkl'), (1.0, ), {})


def test_crafted_pickled_proposals_are_refused_and_never_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pkl')
    with open(path, 'wb') as f:
        pickle.dump(dict(scales=(1.0, ), proposals={1: [_Payload(marker)]}), f)
    with pytest.raises(ValueError, match=r'refused to load .*evil\.pkl.*posix\.system|'
                       r'refused to load .*evil\.pkl.*os\.system'):
        SNIPERDataset(_Images(), proposal_file=path)
    assert not marker.exists()


def test_old_pickled_proposals_of_plain_arrays_still_load(tmp_path):
    path = str(tmp_path / 'old.pkl')
    arr = np.arange(10, dtype=np.float32).reshape(2, 5)
    with open(path, 'wb') as f:
        pickle.dump(dict(scales=(1.0, 'fit'), proposals={3: [arr, arr]}), f)
    scales, props = load_proposals(path)
    assert scales == (1.0, 'fit')
    np.testing.assert_array_equal(props[3][1], arr)


def test_npz_holding_an_object_array_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.npz')
    np.savez(path, scales=np.array(['1.0']), img_ids=np.array([1]), counts=np.array([[1]]),
             boxes=np.array([_Payload(marker)], dtype=object))
    with pytest.raises(ValueError, match='never unpickles'):
        load_proposals(path)
    assert not marker.exists()
    with pytest.raises(ValueError, match='not found'):
        load_proposals(str(tmp_path / 'absent.npz'))
