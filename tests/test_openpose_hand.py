"""OpenPose's hand network (models/hand/pose_deploy.prototxt), its head with the background map,
left-hand mirroring and OpenPose's multi-scale hand test (arXiv:1704.07809)."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn

import mmext  # noqa: F401
from mmext.pose.openpose_hand import (OPENPOSE_HAND, OpenPoseHandHead, OpenPoseHandNet,
                                      count_parameters, stage_shapes)

from conftest import ROOT, run_tool

REGISTRY_SCOPE = 'mmpose'  # see conftest._default_registry_scope

CFG_DIR = osp.join(ROOT, 'configs', 'hand')
SYN_CFG = osp.join(CFG_DIR, 'openpose-hand_synthetic-96x96.py')


def test_parameter_count_equals_the_prototxt():
    net = OpenPoseHandNet()
    # pose_deploy.prototxt: VGG-19 to conv4_4, conv5_1, conv5_2 (512), conv5_3_CPM (128),
    # conv6_1_CPM 1x1 512, conv6_2_CPM 1x1 22; stages 2-6: 5 x 7x7 128, 1x1 128, 1x1 22
    conv = lambda i, o, k: i * o * k * k + o  # noqa: E731
    vgg = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256)] + [(256, 256)] * 3 \
        + [(256, 512)] + [(512, 512)] * 5
    trunk = sum(conv(i, o, 3) for i, o in vgg) + conv(512, 128, 3)
    stage1 = conv(128, 512, 1) + conv(512, 22, 1)
    stage = conv(150, 128, 7) + 4 * conv(128, 128, 7) + conv(128, 128, 1) + conv(128, 22, 1)
    assert count_parameters(net.trunk) == trunk
    assert count_parameters(net.stages[0]) == stage1
    assert all(count_parameters(s) == stage for s in net.stages[1:])
    assert count_parameters(net) == trunk + stage1 + 5 * stage == 36_832_324
    assert OPENPOSE_HAND['num_params'] == 36_832_324
    # no normalisation layers; every stage 2-6 conv before the 1x1s is 7x7
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    for s in net.stages[1:]:
        ks = [m.kernel_size for m in s if isinstance(m, nn.Conv2d)]
        assert ks == [(7, 7)] * 5 + [(1, 1)] * 2
    # the last layer of every stage has no ReLU (OpenPose's conv6_2_CPM / Mconv7)
    assert all(isinstance(s[-1], nn.Conv2d) for s in net.stages)


def test_22_maps_per_stage_at_stride_8():
    # 368 -> 46 as OpenPose; narrow so that the 368 forward is quick
    shapes = stage_shapes(OpenPoseHandNet(widen_factor=0.0625), 368)
    assert shapes == ((1, 22, 46, 46), ) * 6
    assert stage_shapes(OpenPoseHandNet(), 64) == ((1, 22, 8, 8), ) * 6
    with pytest.raises(ValueError, match='widen_factor'):
        OpenPoseHandNet(widen_factor=0)
    with pytest.raises(ValueError, match='num_stages'):
        OpenPoseHandNet(num_stages=0)


def _samples(n, hm):
    from mmengine.structures import InstanceData, PixelData
    from mmpose.structures import PoseDataSample
    out = []
    for i in range(n):
        s = PoseDataSample()
        s.gt_fields = PixelData(heatmaps=hm[i])
        s.gt_instance_labels = InstanceData(keypoint_weights=torch.ones(1, 21))
        out.append(s)
    return out


def test_head_trains_the_background_map_and_decodes_21_keypoints():
    head = OpenPoseHandHead(num_stages=2)
    hm = torch.zeros(1, 21, 8, 8)
    hm[0, 3, 2, 5] = 1.0
    hm[0, 4, 2, 5] = 0.4
    bg = OpenPoseHandHead.background_target(hm)
    assert bg.shape == (1, 1, 8, 8) and bg[0, 0, 2, 5] == 0 and bg[0, 0, 0, 0] == 1
    feats = [torch.rand(1, 22, 8, 8, requires_grad=True) for _ in range(2)]
    assert [f.shape[1] for f in head.forward(feats)] == [21, 21]
    loss = head.loss(feats, _samples(1, hm))['loss_kpt']
    loss.backward()
    for f in feats:  # every stage, the background channel too
        assert f.grad[:, -1].abs().sum() > 0 and f.grad[:, :-1].abs().sum() > 0
    # a perfect prediction (keypoints + background) has zero loss
    perfect = [torch.cat([hm, bg], 1)] * 2
    assert head.loss(perfect, _samples(1, hm))['loss_kpt'].item() == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match='22'):
        head.loss([torch.rand(1, 21, 8, 8)] * 2, _samples(1, hm))


def test_synthetic_config_predicts_hands_through_inference_topdown():
    from mmpose.apis import inference_topdown, init_model
    torch.manual_seed(0)
    model = init_model(SYN_CFG, None, device='cpu')
    assert isinstance(model.backbone, OpenPoseHandNet)
    assert model.test_cfg['mirror_left'] is True
    img = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    out = inference_topdown(model, img, np.array([[10, 10, 70, 70]], np.float32))
    assert out[0].pred_instances.keypoints.shape == (1, 21, 2)


def test_full_size_config_is_openposes_network():
    from mmengine.config import Config
    from mmpose.registry import MODELS
    cfg = Config.fromfile(osp.join(CFG_DIR,
                                   'openpose-hand_vgg19-cpm6_8xb32-210e_panoptic-hand-368x368.py'))
    assert cfg.codec.input_size == (368, 368) and cfg.codec.heatmap_size == (46, 46)
    model = MODELS.build(cfg.model)
    assert count_parameters(model) == 36_832_324
    pre = model.data_preprocessor  # OpenPose's input: BGR, x / 256 - 0.5
    x = torch.full((1, 3, 4, 4), 192.0)
    np.testing.assert_allclose(((x - pre.mean) / pre.std).flatten()[0].item(), 0.25)
    assert not pre._channel_conversion
    assert [e.type for e in cfg.val_evaluator][0] == 'PCKAccuracy'
    assert cfg.val_evaluator[0].norm_item == 'head' and cfg.val_evaluator[0].thr == 0.7


def test_openpose_scales_and_multiscale_picks_the_best_mean_score():
    from mmext.pose.hands_from_body import HandsFromBody, openpose_scales
    np.testing.assert_allclose(openpose_scales(6, 0.4), [0.8, 0.88, 0.96, 1.04, 1.12, 1.2])
    np.testing.assert_allclose(openpose_scales(2, 0.4), [0.8, 1.2])  # flags.hpp's example
    assert openpose_scales(1, 0.4).tolist() == [1.0]
    with pytest.raises(ValueError, match='hand_scale_number'):
        openpose_scales(0, 0.4)

    class Fake(HandsFromBody):
        """inference_topdown stand-in: score = closeness of the crop side to 25 px."""
        calls = []

        def _topdown(self, img, boxes):
            side = (boxes[:, 2] - boxes[:, 0]) * self.crop_padding
            self.calls.append(side)
            k = np.repeat(((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None], 21, 1)
            return k + side[:, None, None], np.repeat(-np.abs(side - 25)[:, None], 21, 1)

    body = np.zeros((1, 17, 3))
    body[..., 2] = 1
    body[0, [5, 7, 9], :2] = [(40, 0), (40, 10), (40, 20)]   # left: side 15
    body[0, [6, 8, 10], :2] = [(80, 0), (80, 20), (86, 28)]  # right: side 27
    fake = Fake(object(), crop_padding=1.25, hand_scale_number=3, hand_scale_range=0.4,
                flip_left=False)
    res = fake(np.zeros((64, 128, 3), np.uint8), body)
    # OpenPose's crop sides: round(side * s) // 2 * 2 for s in 0.8, 1.0, 1.2
    np.testing.assert_allclose(np.stack(Fake.calls), [[12], [14], [18], [22], [26], [32]], rtol=1e-5)
    # left (15): 18 (s = 1.2) is closest to 25; right (27): 26 (s = 1.0)
    np.testing.assert_allclose(res['hand_keypoints'][0, :, 0, 0] - [40, 87.98], [18, 26],
                               atol=1e-4)


def test_left_hands_are_mirrored_when_the_config_says_so(monkeypatch):
    from mmpose.apis import init_model
    from mmext.pose.hands_from_body import HandsFromBody
    model = init_model(SYN_CFG, None, device='cpu')
    assert HandsFromBody(model).flip_left is True
    assert HandsFromBody(model, flip_left=False).flip_left is False
    seen = []

    def spy(self, img, boxes):
        seen.append((img.copy(), boxes.copy()))
        return np.zeros((len(boxes), 21, 2)) + 5.0, np.ones((len(boxes), 21))

    monkeypatch.setattr(HandsFromBody, '_topdown', spy)
    img = np.zeros((64, 100, 3), np.uint8)
    img[:, :10] = 255  # a bright left border: the mirrored image has it on the right
    body = np.zeros((1, 17, 3))
    body[..., 2] = 1
    body[0, [5, 7, 9], :2] = [(40, 0), (40, 10), (40, 20)]
    body[0, [6, 8, 10], :2] = [(60, 0), (60, 10), (60, 20)]
    res = HandsFromBody(model)(img, body)
    (left_img, left_box), (right_img, right_box) = seen
    assert left_img[0, -1, 0] == 255 and right_img[0, 0, 0] == 255
    # the left box is mirrored (x -> w - x), the keypoints mirrored back
    lb, rb = res['hand_boxes'][0]
    centre = lambda b: (b[0] + b[2]) / 2  # noqa: E731
    assert centre(left_box[0]) == pytest.approx(100 - centre(lb))
    assert centre(right_box[0]) == pytest.approx(centre(rb))
    assert res['hand_keypoints'][0, 0, 0, 0] == pytest.approx(95.0)
    assert res['hand_keypoints'][0, 1, 0, 0] == pytest.approx(5.0)


def test_runner_trains_the_synthetic_config_one_iteration(tmp_path):
    """The synthetic OpenPose config through mmengine's Runner (what tools/train.py runs):
    one iteration of 4 crops, then validation with the config's metrics."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmext.pose.synthetic_hands import generate_split
    root = str(tmp_path / 'hands')
    for split in ('labelled', 'val'):
        generate_split(root, split, num_frames=1)  # 1 frame = 6 views, a few seconds
    cfg = Config.fromfile(SYN_CFG)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_dataloader.dataset.data_root = cfg.val_dataloader.dataset.data_root = root
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.train_dataloader.update(batch_size=4, num_workers=0)
    cfg.train_dataloader.dataset.indices = 4
    cfg.val_dataloader.update(num_workers=0)
    cfg.val_dataloader.dataset.indices = 4
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    before = [p.detach().clone() for p in runner.model.backbone.stages[-1].parameters()]
    runner.train()
    after = list(runner.model.backbone.stages[-1].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    metrics = runner.val_loop.run()
    assert {'PCK', 'AUC', 'EPE'} <= set(metrics)


@pytest.mark.slow
def test_one_training_iteration_through_tools_train(tmp_path, python):
    work = tmp_path / 'work'
    r = run_tool([python, 'tools/train.py', SYN_CFG, '--work-dir', str(work), '--cfg-options',
                  'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                  'train_dataloader.dataset.indices=4', 'train_dataloader.batch_size=4',
                  'val_dataloader.dataset.indices=4', 'default_hooks.logger.interval=1',
                  'param_scheduler=[]'], timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    from conftest import logged_losses
    losses = logged_losses(work)
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert 'AUC' in r.stdout + r.stderr


def test_hand_demo_runs_openposes_pipeline_from_a_coco_body_file(tmp_path):
    """tools/hand_demo.py with the OpenPose synthetic config (random weights): body json ->
    both hands, mirrored left, 2 test scales; the json holds 21 keypoints per found hand."""
    import json
    import sys
    import cv2
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import hand_demo
    img = tmp_path / 'person.png'
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8))
    kp = np.zeros((17, 3))
    kp[:, 2] = 2
    kp[[5, 7, 9], :2] = [(50, 20), (50, 50), (50, 80)]
    kp[[6, 8, 10], :2] = [(110, 20), (110, 50), (112, 80)]
    json.dump(dict(images=[dict(id=1, file_name='person.png')],
                   annotations=[dict(image_id=1, num_keypoints=17, keypoints=kp.ravel().tolist())]),
              open(tmp_path / 'body.json', 'w'))
    out = hand_demo.main([str(img), SYN_CFG, '--body-json', str(tmp_path / 'body.json'),
                          '--layout', 'coco', '--hand-scale-number', '2',
                          '--out-file', str(tmp_path / 'hands.png'),
                          '--out-json', str(tmp_path / 'hands.json')])
    assert out['hand_valid'].tolist() == [[True, True]]
    assert np.isfinite(out['hand_keypoints']).all() and out['hand_keypoints'].shape == (1, 2, 21, 2)
    assert osp.exists(tmp_path / 'hands.png') and osp.exists(tmp_path / 'hands.json')
