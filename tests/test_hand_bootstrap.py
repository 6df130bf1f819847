"""Multiview bootstrapping, synthetic multiview hands, the hand CPM and the body -> hands
pipeline (Simon et al., CVPR 2017, arXiv:1704.07809)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

import mmext  # noqa: F401
from mmext.pose.bootstrap import (bootstrap_iteration, run_bootstrap, score_frame,
                                  select_top_frames)
from mmext.pose.hand_cpm import HandCPM
from mmext.pose.synthetic_hands import (SyntheticHandDataset, generate_split, load_multiview)
from mmext.pose.triangulation import TriangulationResult

from conftest import ROOT, run_tool

REGISTRY_SCOPE = 'mmpose'  # see conftest._default_registry_scope

CFG_DIR = osp.join(ROOT, 'configs', 'hand')


@pytest.fixture(scope='module')
def hands(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('hands'))
    files = {s: generate_split(root, s, num_frames=n) for s, n in
             (('labelled', 6), ('multiview', 5), ('val', 4))}
    return root, files


def _result(score):
    return TriangulationResult(np.zeros((21, 3)), np.ones((2, 21), bool), np.zeros((2, 21)),
                               np.asarray(score, float))


def test_frame_score_is_the_sum_of_inlier_confidences_and_top_n_picks_the_best():
    s = np.zeros(21)
    s[:3] = [1.5, 0.5, np.nan]  # NaN keypoint scores (not triangulated) count as 0
    assert score_frame(_result(s)) == pytest.approx(2.0)
    assert select_top_frames([3.0, 7.0, 7.0, 1.0], 2).tolist() == [1, 2]  # ties: lower index
    assert select_top_frames([3.0, 7.0, 1.0], 10).tolist() == [1, 0, 2]
    for bad, match in (([1.0, np.nan], 'finite'), ([[1.0]], '1-D')):
        with pytest.raises(ValueError, match=match):
            select_top_frames(bad, 1)
    for n in (0, 1.5):
        with pytest.raises(ValueError, match='top_n'):
            select_top_frames([1.0, 2.0], n)


def test_synthetic_hands_are_deterministic_and_have_exact_projections(hands, tmp_path):
    root, files = hands
    again = generate_split(str(tmp_path), 'multiview', num_frames=5)
    assert open(again, 'rb').read() == open(files['multiview'], 'rb').read()
    first = json.load(open(files['multiview']))['images'][0]['file_name']
    assert open(osp.join(root, first), 'rb').read() == open(osp.join(tmp_path, first), 'rb').read()
    mv = load_multiview(files['multiview'])
    assert mv['cameras'].shape == (6, 3, 4) and len(mv['frames']) == 5
    from mmext.pose.triangulation import project
    for fid, views in mv['frames'].items():
        for v, im in views.items():
            kp = np.array(mv['anns'][im['id']]['keypoints']).reshape(21, 3)
            uv = project(mv['points3d'][fid], mv['cameras'][[v, v]])[0]
            np.testing.assert_allclose(kp[:, :2], uv, atol=1e-3)
    vis = np.concatenate([np.array(a['keypoints']).reshape(21, 3)[:, 2]
                          for a in mv['coco']['annotations']])
    assert set(vis) == {1, 2} and 0.05 < (vis == 1).mean() < 0.6  # self-occlusion happens


def test_synthetic_dataset_reads_as_an_mmpose_hand_dataset(hands):
    root, _ = hands
    ds = SyntheticHandDataset(split='val', data_root=root, data_mode='topdown', test_mode=True,
                              pipeline=[])
    assert len(ds) == 4 and ds.metainfo['num_keypoints'] == 21
    item = ds[0]
    assert item['keypoints'].shape == (1, 21, 2) and osp.exists(item['img_path'])
    with pytest.raises(ValueError, match='split'):
        SyntheticHandDataset(split='test', data_root=root)


def _oracle(multiview, corrupt_view=None):
    """A detector that returns the exact ground truth (one view shifted by 30 px)."""
    by_path = {}
    for im in multiview['coco']['images']:
        kp = np.array(multiview['anns'][im['id']]['keypoints']).reshape(21, 3)[:, :2]
        if im['view_id'] == corrupt_view:
            kp = kp + 30.0
        by_path[im['file_name']] = kp

    def predict(items):
        k = np.stack([by_path[osp.relpath(p, multiview['root'])] for p, _ in items])
        return k, np.full(k.shape[:2], 0.9)
    return predict


def test_bootstrap_iteration_writes_coco_labels_that_match_the_truth(hands, tmp_path):
    root, files = hands
    mv = load_multiview(files['multiview'])
    mv['root'] = root
    labelled = json.load(open(files['labelled']))
    out = str(tmp_path / 'it1' / 'labels.json')
    fig = bootstrap_iteration(_oracle(mv, corrupt_view=2), mv, labelled, root, out, top_n=3,
                              inlier_thr=4.0)
    assert fig['selected'] == 3 and fig['label_err_px'] < 1e-3
    assert fig['inlier_rate'] == pytest.approx(5 / 6)  # the shifted view is rejected everywhere
    coco = json.load(open(out))
    assert len(coco['images']) == 6 + 3 * 6 and len(coco['bootstrap']['frames']) == 3
    new = [a for a in coco['annotations'] if a['image_id'] >= 6]
    img_by_id = {im['id']: im for im in coco['images']}
    for a in new:  # reprojected labels = exact ground truth of that view, occluded joints too
        im = img_by_id[a['image_id']]
        gt = mv['anns'][next(i['id'] for i in mv['frames'][im['frame_id']].values()
                             if i['view_id'] == im['view_id'])]
        np.testing.assert_allclose(np.array(a['keypoints']).reshape(21, 3)[:, :2],
                                   np.array(gt['keypoints']).reshape(21, 3)[:, :2], atol=1e-3)
        assert a['num_keypoints'] == 21
    assert osp.exists(str(tmp_path / 'it1' / 'labels_figures.json'))
    # the written file is an MMPose training set
    ds = SyntheticHandDataset(split='labelled', data_root=root, ann_file=out, pipeline=[])
    assert len(ds) == 24


def test_run_bootstrap_retrains_on_each_rounds_labels(hands, tmp_path):
    root, files = hands
    mv = load_multiview(files['multiview'])
    mv['root'] = root
    calls = []

    def train(ann, work_dir, i):
        calls.append((osp.basename(ann), i, len(json.load(open(ann))['images'])))
        return f'ckpt{i}'

    hist = run_bootstrap(train, lambda ckpt: _oracle(mv), files['labelled'], files['multiview'],
                         root, str(tmp_path), iterations=2, top_n=2, log=lambda s: None)
    assert calls == [('labelled.json', 0, 6), ('labels.json', 1, 18), ('labels.json', 2, 18)]
    assert [h['checkpoint'] for h in hist] == ['ckpt0', 'ckpt1', 'ckpt2']
    assert osp.exists(tmp_path / 'iter_2' / 'labels.json')
    with pytest.raises(ValueError, match='iterations'):
        run_bootstrap(train, None, files['labelled'], files['multiview'], root, str(tmp_path), 0)


def test_hand_cpm_paper_width_is_mmpose_cpm_and_narrow_one_has_6_stage_outputs():
    from mmpose.models.backbones import CPM
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(HandCPM(3, 21, stem_channels=128)) == n(CPM(3, 21, middle_channels=128))
    m = HandCPM(3, 21, feat_channels=16, middle_channels=16, stem_channels=16)
    m.eval()  # mmpose's BaseBackbone.train() returns None, so no chaining
    with torch.no_grad():
        outs = m(torch.rand(1, 3, 96, 96))
    assert len(outs) == 6 and all(o.shape == (1, 21, 12, 12) for o in outs)
    with pytest.raises(ValueError, match='stem_channels'):
        HandCPM(stem_channels=0)


def test_paper_config_is_the_hand_cpm_with_a_loss_at_every_stage():
    from mmengine.config import Config
    from mmpose.registry import MODELS
    for name in ('onehand10k', 'coco-wholebody-hand', 'panoptic-hand'):
        cfg = Config.fromfile(osp.join(CFG_DIR, f'cpm_hand_8xb32-210e_{name}-368x368.py'))
        assert cfg.default_scope == 'mmpose' and cfg.codec.input_size == (368, 368)
        assert [e.type for e in cfg.val_evaluator] == ['PCKAccuracy', 'AUC', 'EPE']
        if name == 'panoptic-hand':  # the Panoptic benchmark: PCKh@0.7 of head_size
            assert cfg.val_evaluator[0].thr == 0.7 and cfg.val_evaluator[0].norm_item == 'head'
        else:
            assert cfg.val_evaluator[0].thr == 0.2
    model = MODELS.build(cfg.model)
    assert model.backbone.num_stages == 6 and model.head.num_stages == 6
    feats = [torch.rand(2, 21, 46, 46, requires_grad=True) for _ in range(6)]
    from mmpose.structures import PoseDataSample
    from mmengine.structures import InstanceData, PixelData
    samples = []
    for _ in range(2):
        s = PoseDataSample()
        s.gt_fields = PixelData(heatmaps=torch.rand(21, 46, 46))
        s.gt_instance_labels = InstanceData(keypoint_weights=torch.ones(1, 21))
        samples.append(s)
    loss = model.head.loss(feats, samples)['loss_kpt']
    loss.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)  # every stage


def test_hands_from_body_finds_both_hands_and_skips_missing_ones(hands):
    from mmpose.apis import init_model
    from mmext.pose.hands_from_body import HandsFromBody
    root, files = hands
    torch.manual_seed(0)
    model = init_model(osp.join(CFG_DIR, 'cpm_hand_synthetic-96x96.py'), None, device='cpu')
    img = osp.join(root, json.load(open(files['val']))['images'][0]['file_name'])
    body = np.zeros((2, 17, 3))
    body[:, :, 2] = 1
    body[:, [5, 7, 9], :2] = [(40, 20), (40, 50), (40, 80)]
    body[:, [6, 8, 10], :2] = [(90, 20), (90, 50), (95, 80)]
    body[1, 9, 2] = 0  # person 1 has no left wrist
    calls = []

    def body_fn(image):
        calls.append(image.shape)
        return body[..., :2], body[..., 2]

    for flip in (False, True):
        res = HandsFromBody(model, body_fn, flip_left=flip)(img)
        assert calls[-1] == (128, 128, 3)
        assert res['hand_valid'].tolist() == [[True, True], [False, True]]
        assert res['hand_keypoints'].shape == (2, 2, 21, 2)
        assert np.isnan(res['hand_keypoints'][1, 0]).all()
        k, b = res['hand_keypoints'][0, 0], res['hand_boxes'][0, 0]
        # keypoints lie in their crop, which is the OpenPose box itself (HandsFromBody undoes
        # GetBBoxCenterScale's 1.25 padding), + one heatmap cell (side / 12) for the sub-cell
        # refinement at the border
        pad = (b[2] - b[0]) / 12
        assert ((k >= b[:2] - pad) & (k <= b[2:] + pad)).all()
    with pytest.raises(ValueError, match='body_keypoints must be given'):
        HandsFromBody(model)(img)


@pytest.mark.slow
def test_one_bootstrap_iteration_end_to_end_on_synthetic_data(tmp_path, python):
    work = tmp_path / 'work'
    r = run_tool([python, 'tools/hand_bootstrap.py', 'configs/hand/cpm_hand_synthetic-96x96.py',
                  '--iterations', '1', '--top-n', '8', '--train-iters', '60',
                  '--data-root', str(tmp_path / 'data') + '/', '--work-dir', str(work)])
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.load(open(work / 'summary.json'))
    assert [row['detector'] for row in rows] == ['d_0', 'd_1']
    for row in rows:
        assert 0 <= row['PCK'] <= 1 and 0 <= row['AUC'] <= 1 and row['EPE'] > 0
    labels = json.load(open(work / 'iter_1' / 'labels.json'))
    figures = json.load(open(work / 'iter_1' / 'labels_figures.json'))
    # d_1 trained on the 48 labelled views + the reprojected views of the selected frames
    assert len(labels['images']) == 48 + figures['labelled_views'] == rows[1]['train_images']
    assert len(labels['bootstrap']['frames']) == figures['selected'] <= 8
    # d_0 (60 iterations, seeded) detects: measured 0.95 of its keypoints above lambda = 0.2,
    # so frames get triangulated and labelled
    assert figures['detections_above_lambda'] > 0.5
    assert figures['selected'] == 8 and figures['labelled_views'] > 0
    assert np.isfinite(figures['label_err_px']) and figures['label_err_px'] > 0


def test_real_dataset_configs_name_the_missing_file_and_the_synthetic_config():
    from mmengine.config import Config
    from mmext.utils.launch import DatasetNotFoundError, check_data_paths
    cfg = Config.fromfile(osp.join(CFG_DIR, 'cpm_hand_8xb32-210e_coco-wholebody-hand-368x368.py'))
    with pytest.raises(DatasetNotFoundError, match='coco_wholebody_train_v1.0.json') as e:
        check_data_paths(cfg)
    assert 'cpm_hand_synthetic-96x96.py' in str(e.value)


def test_panoptic_config_evaluates_pckh_with_the_datasets_head_size(tmp_path):
    """PanopticHand2DDataset reads each hand's head_size; through the config's val pipeline it
    reaches PCKAccuracy(norm_item='head'), which thresholds at 0.7 x head_size."""
    import cv2
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmpose.registry import DATASETS, METRICS
    cfg = Config.fromfile(osp.join(CFG_DIR, 'cpm_hand_8xb32-210e_panoptic-hand-368x368.py'))
    cv2.imwrite(str(tmp_path / 'a.jpg'), np.zeros((64, 64, 3), np.uint8))
    kp = np.stack([np.linspace(10, 50, 21), np.linspace(12, 40, 21), np.full(21, 2)], 1)
    coco = dict(images=[dict(id=1, file_name='a.jpg', height=64, width=64)],
                annotations=[dict(id=1, image_id=1, category_id=1, iscrowd=0, num_keypoints=21,
                                  keypoints=kp.flatten().tolist(), bbox=[8, 8, 48, 40],
                                  head_size=10.0, segmentation=[])],
                categories=[dict(id=1, name='hand')])
    json.dump(coco, open(tmp_path / 'test.json', 'w'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.update(data_root=str(tmp_path), ann_file='test.json', data_prefix=dict(img=''))
    ds = DATASETS.build(ds_cfg)
    assert ds.get_data_info(0)['head_size'] == 10.0
    sample = ds[0]['data_samples']
    assert float(sample.gt_instances.head_size) == 10.0
    metric = METRICS.build(cfg.val_evaluator[0])
    metric.dataset_meta = ds.metainfo
    pred = sample.to_dict()
    # errors 6.9 px (< 0.7 x 10) on 11 keypoints, 7.1 px on 10: PCKh = 11 / 21
    err = np.where(np.arange(21) < 11, 6.9, 7.1)
    pred['pred_instances'] = dict(keypoints=(kp[None, :, :2] + np.stack([err, 0 * err], 1)))
    metric.process([], [pred])
    assert metric.compute_metrics(metric.results)['PCKh'] == pytest.approx(11 / 21)
