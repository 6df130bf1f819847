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
                                   in_range, negative_chips, positive_chips, resolve_scale)
from mmext.datasets.sniper_transforms import SNIPERChipCrop
from mmext.models.detectors.sniper_inference import merge_scale_detections

from conftest import ROOT, run_tool

COCO = dict(chip_size=512, stride=32, scales=SNIPER_COCO['scales'],
            valid_ranges=SNIPER_COCO['valid_ranges'])
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


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_every_valid_box_is_inside_a_positive_chip_of_its_scale(seed):
    rng = np.random.RandomState(seed)
    w, h = 1333, 800
    boxes = random_boxes(rng, 60, w, h)
    for scale_spec, rng_ in zip(COCO['scales'], COCO['valid_ranges']):
        s = resolve_scale(scale_spec, w, h, 512)
        chips = positive_chips(w, h, boxes, s, rng_, 512, 32)
        valid = in_range(boxes, rng_)
        assert valid.any()
        assert contains(chips, boxes[valid] * s).any(0).all()
        # no chip leaves the scaled image (or, for a small image, the padded chip)
        sw, sh = round(w * s), round(h * s)
        assert (chips[:, :2] >= 0).all()
        assert (chips[:, 2] <= max(sw, 512)).all() and (chips[:, 3] <= max(sh, 512)).all()
        assert ((chips[:, 2] - chips[:, 0]) <= 512).all()


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
    valid = in_range(boxes, (0, 150))
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


def test_negative_chips_never_repeat_positive_coverage():
    rng = np.random.RandomState(0)
    w, h = 800, 600
    boxes = random_boxes(rng, 5, 300, 300, 20, 60)  # objects in the top-left corner only
    pos = positive_chips(w, h, boxes, 1.0, (0, 150), 512, 32)
    # proposals: a cluster inside the positive chip and a cluster in the bottom-right
    inside = random_boxes(rng, 40, 300, 300, 20, 60)
    outside = random_boxes(rng, 40, 250, 250, 20, 60) + [520, 320, 520, 320]
    props = np.concatenate([inside, outside])
    props = np.concatenate([props, rng.uniform(0.5, 1, (len(props), 1))], 1)
    neg = negative_chips(w, h, props, pos, 1.0, (0, 150), 512, 32, 300, 10)
    assert len(neg) == 1
    assert not any((n == p).all() for n in neg for p in pos)
    # the proposals the negative chip is kept for lie outside every positive chip
    counted = contains(neg, props[:, :4]).any(0) & ~contains(pos, props[:, :4]).any(0)
    assert counted.sum() > 10
    assert not (contains(neg, inside) & ~contains(pos, inside)).any()
    # with a high threshold no negative chip survives
    assert len(negative_chips(w, h, props, pos, 1.0, (0, 150), 512, 32, 300, 100)) == 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(chip_size=500, stride=32), 'multiple of'),
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
            if inst['ignore_flag'] == 0:
                assert lo <= side <= hi + 1e-6
    assert seen == {0, 2}  # an ignore region in a fine chip, a target in the 'fit' chip
    negs = lambda d: [tuple(d.get_chip(i)[1]) + (d.get_chip(i)[0], )  # noqa: E731
                      for i in range(d.num_positive, len(d))]
    again = SNIPERDataset(_Images(), proposal_file=_proposals(tmp_path), neg_per_image=2,
                          neg_min_proposals=(3, 3, 3), seed=0)
    assert negs(ds) == negs(again)  # same seed, same chips
    np.testing.assert_array_equal(ds._pos_chip, again._pos_chip)
    picks = {tuple(negs(ds))}
    for epoch in range(1, 6):
        ds.set_epoch(epoch)
        picks.add(tuple(negs(ds)))
    assert len(picks) > 1  # negatives are resampled across epochs
    assert len({len(p) for p in picks}) == 1  # but len() stays fixed


def test_epoch_hook_reaches_a_wrapped_sniper_dataset():
    from types import SimpleNamespace

    from mmext.datasets.sniper import SNIPEREpochHook
    ds = SNIPERDataset(_Images())
    outer = SimpleNamespace(dataset=ds)  # e.g. a further wrapper
    runner = SimpleNamespace(epoch=3, train_dataloader=SimpleNamespace(dataset=outer))
    SNIPEREpochHook().before_train_epoch(runner)
    assert ds.epoch == 3


def test_wrapper_rejects_mismatched_proposal_scales(tmp_path):
    path = save_proposals(str(tmp_path / 'p.npz'), (2.0, 1.0, 'fit'), {})
    with pytest.raises(ValueError, match='scales'):
        SNIPERDataset(_Images(), proposal_file=path)


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


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize('name', ['faster-rcnn_r50_fpn_sniper_1x_coco',
                                  'retinanet_r50_fpn_sniper_1x_coco'])
def test_coco_configs_use_the_paper_settings(name):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs/sniper', name + '.py'))
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'SNIPERDataset' and ds.chip_size == 512 and ds.stride == 32
    assert tuple(ds.scales) == (3.0, 1.667, 'fit')
    assert cfg.test_cfg.type == 'SNIPERTestLoop' and cfg.test_cfg.nms.sigma == 0.55
    assert cfg.test_cfg.max_per_img == 200
    views = cfg.test_dataloader.dataset.pipeline[1].transforms[0]
    assert len(views) == len(cfg.test_cfg.test_ranges) == 3


@pytest.mark.parametrize('cfg_path',
                         [SYN_CFG, 'configs/sniper/retinanet_r18_fpn_sniper_synthetic.py',
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


@pytest.mark.slow
def test_synthetic_sniper_trains_tests_with_chip_inference_and_mines_negatives(
        tmp_path, python, synthetic_root):
    work = str(tmp_path)
    r = run_tool([python, 'tools/train.py', SYN_CFG, '--work-dir', work, '--cfg-options',
                  'train_cfg.max_epochs=1', 'train_dataloader.dataset.dataset.indices=3',
                  'train_dataloader.num_workers=0', 'val_dataloader.dataset.indices=2',
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
