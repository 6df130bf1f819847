"""RepNet (arXiv:1902.09868): KCS, losses, WGAN-GP, alternating training, data, metrics."""
import copy
import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapperDict

import mmext  # noqa: F401
from mmext.pose.bone_symmetry import BoneSymmetryError
from mmext.pose.kcs import (H36M_16_EDGES, H36M_17_EDGES, H36M_17_JOINTS, bone_lengths,
                            bone_matrix,
                            bone_vectors, kcs_matrix, symmetric_bone_pairs)
from mmext.pose.repnet import (RepNetCritic, RepNetGenerator,
                               RepNetOptimWrapperConstructor, camera_loss, camera_rotation,
                               gradient_penalty, normalize_2d, reprojection_loss)
from mmext.pose.synthetic_poses3d import (LIMITS, ensure_generated, make_split, project,
                                          random_cameras, sample_poses)
from mmpose.registry import DATASETS

REGISTRY_SCOPE = 'mmpose'  # see conftest._default_registry_scope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SYN_CFG = osp.join(ROOT, 'configs/repnet/repnet_fc256_b64-15e_synthetic-16j.py')
IDX16 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]
H36M17 = list(H36M_17_JOINTS)


def random_rotation(seed=0):
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))
    return q * torch.sign(torch.det(q))


# ----------------------------------------------------------------------------- KCS
def test_kcs_bone_vectors_and_psi_match_hand_computation():
    # chain 0 -> 1 -> 2 plus a bone 0 -> 2: B columns are p1 - p0, p2 - p1, p2 - p0
    pose = torch.tensor([[[0., 0, 0], [1, 0, 0], [1, 2, 0]]])
    c = bone_matrix([(0, 1), (1, 2), (0, 2)], 3)
    assert c.tolist() == [[-1, 0, -1], [1, -1, 0], [0, 1, 1]]
    b = bone_vectors(pose, c)[0]
    assert b.T.tolist() == [[1, 0, 0], [0, 2, 0], [1, 2, 0]]
    psi = kcs_matrix(pose, c)[0]
    # diagonal: squared lengths; off-diagonal: dot products of bone vectors
    assert psi.tolist() == [[1, 0, 1], [0, 4, 4], [1, 4, 5]]


def test_kcs_diagonal_is_squared_bone_lengths_h36m():
    poses = torch.tensor(sample_poses(4, seed=3), dtype=torch.float32)
    psi = kcs_matrix(poses, bone_matrix(H36M_17_EDGES, 17))
    assert psi.shape == (4, 16, 16)
    torch.testing.assert_close(psi.diagonal(dim1=1, dim2=2),
                               bone_lengths(poses, H36M_17_EDGES) ** 2)
    # Psi does not change when the pose is rotated (it only holds lengths and angles)
    rot = random_rotation(1)
    torch.testing.assert_close(kcs_matrix(poses @ rot.T, bone_matrix(H36M_17_EDGES, 17)), psi,
                               atol=1e-5, rtol=1e-5)


def test_h36m_16_joint_skeleton_is_17_without_neck_base():
    poses = torch.tensor(sample_poses(2, seed=0), dtype=torch.float32)
    l17 = bone_lengths(poses, H36M_17_EDGES)
    l16 = bone_lengths(poses[:, IDX16], H36M_16_EDGES)
    assert len(H36M_16_EDGES) == 15
    # thorax->head in the 16-joint skeleton replaces thorax->neck_base->head
    torch.testing.assert_close(l16[:, :8], l17[:, :8])
    torch.testing.assert_close(l16[:, 9:], l17[:, 10:])


@pytest.mark.parametrize('edges', [[(0, 17)], [(-1, 2)], [(3, 3)], [(0, 1, 2)], []])
def test_bad_skeleton_edges_are_rejected(edges):
    with pytest.raises(ValueError, match='edge|skeleton'):
        bone_matrix(edges, 17)
    with pytest.raises(ValueError):
        RepNetCritic(num_keypoints=17, skeleton=edges)


# ----------------------------------------------------------------------------- losses
def test_camera_loss_zero_for_scaled_orthographic_and_positive_otherwise():
    ks = torch.stack([s * random_rotation(i)[:2] for i, s in enumerate((0.1, 1.0, 7.5))])
    for mode in ('l1', 'frobenius'):
        assert camera_loss(ks, mode).item() < 1e-6
    # unequal row norms: 2/5 diag(1, 4) - I = diag(-0.6, 0.6): Frobenius norm 0.6 * sqrt(2)
    # (paper Eq. 4), sum of |entries| 1.2 (official cam_loss, the default)
    k = torch.tensor([[[1., 0, 0], [0, 2, 0]]])
    assert camera_loss(k, 'frobenius').item() == pytest.approx(0.6 * math.sqrt(2), rel=1e-6)
    assert camera_loss(k).item() == pytest.approx(1.2, rel=1e-6)
    # equal norms but not orthogonal rows
    k = torch.tensor([[[1., 0, 0], [math.cos(1.0), math.sin(1.0), 0]]])
    assert camera_loss(k).item() > 0.1
    with pytest.raises(ValueError, match='cam_loss'):
        camera_loss(k, 'l2')


def test_official_reprojection_loss_weights_root_neck_and_head():
    """train_repnet.py's weighted_pose_2d_loss: sum_j w_j |W - KX| / 2J, w = 0 at the pelvis,
    0.1 at upper neck and head top (official joints 6, 8, 9 -> MMPose's root, neck_base, head)."""
    from mmext.pose.kcs import OFFICIAL_16_JOINTS
    from mmext.pose.repnet import OFFICIAL_REP_JOINT_WEIGHTS
    assert [OFFICIAL_16_JOINTS[i] for i in (6, 8, 9)] == ['root', 'neck_base', 'head']
    assert OFFICIAL_REP_JOINT_WEIGHTS == dict(root=0.0, neck_base=0.1, head=0.1)
    g = torch.Generator().manual_seed(0)
    x, k = torch.randn(2, 17, 3, generator=g), torch.randn(2, 2, 3, generator=g)
    w = x @ k.transpose(1, 2)
    for joint, weight in (('root', 0.0), ('neck_base', 0.1), ('head', 0.1), ('left_wrist', 1)):
        w2 = w.clone()
        w2[:, H36M17.index(joint)] += torch.tensor([3., 4.])
        weights = torch.tensor([OFFICIAL_REP_JOINT_WEIGHTS.get(n, 1.0) for n in H36M17])
        # (3 + 4) * weight / (2 * 17) per pose
        assert reprojection_loss(w2, k, x, 'l1', weights).item() == pytest.approx(
            7 * weight / 34, abs=1e-5)
    with pytest.raises(ValueError, match='joint_weights'):
        reprojection_loss(w, k, x, 'l1', torch.ones(16))


def test_repnet_builds_official_joint_weights_from_the_layout(tmp_path):
    m = small_model(tmp_path)  # 16 = 17 without neck_base: root 0, head 0.1
    names = [H36M17[i] for i in IDX16]
    expected = [0.0 if n == 'root' else 0.1 if n == 'head' else 1.0 for n in names]
    assert m.rep_joint_weights.tolist() == pytest.approx(expected)
    assert small_model(tmp_path, rep_loss='l1').rep_joint_weights.tolist() == [1.0] * 16
    with pytest.raises(ValueError, match='unknown joints'):
        small_model(tmp_path, rep_joint_weights=dict(nose=0.0))
    with pytest.raises(ValueError, match='rep_loss'):
        small_model(tmp_path, rep_loss='l2')
    with pytest.raises(ValueError, match='cam_loss'):
        small_model(tmp_path, cam_loss='l2')


def test_official_kcs_matrix_is_the_official_ct():
    """train_repnet.py kcs_layer's Ct (after commit 231a3bc), rows in the official joint order
    (eval_h36m.py's reordering of the MPII-order detections)."""
    from mmext.pose.kcs import (H36M_16_OFFICIAL_FROM_17, OFFICIAL_16_JOINTS,
                                official_bone_matrix)
    c = official_bone_matrix(OFFICIAL_16_JOINTS)
    assert c.shape == (16, 15)
    # rows of Ct checked one by one against the official file
    assert c[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert c[3].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0]
    assert c[6].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1]
    assert c[7].tolist() == [0, 0, 0, 0, -1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    assert c[15].tolist() == [0] * 12 + [-1, 0, 0]
    assert (c.sum(0) == 0).all() and (c.abs().sum(0) == 2).all()  # one bone per column
    # on the 17-joint layout: the same bones, spine unused
    c17 = official_bone_matrix(H36M17)
    assert c17[H36M17.index('spine')].abs().sum() == 0
    assert torch.equal(c17[list(H36M_16_OFFICIAL_FROM_17)], c)
    # it is not the drawn skeleton: the left hip hangs on the right hip
    assert c17[H36M17.index('right_hip'), 13] == 1 and c17[H36M17.index('left_hip'), 13] == -1
    with pytest.raises(ValueError, match='neck_base'):
        official_bone_matrix([H36M17[i] for i in IDX16])
    critic = RepNetCritic(num_keypoints=17, skeleton='official')
    assert torch.equal(critic.bone_matrix, c17) and critic.k1.in_features == 15 * 15
    with pytest.raises(ValueError, match='skeleton'):
        RepNetCritic(num_keypoints=17, skeleton='openpose')


def test_reprojection_loss_zero_when_kx_reproduces_w():
    g = torch.Generator().manual_seed(0)
    x, k = torch.randn(5, 16, 3, generator=g), torch.randn(5, 2, 3, generator=g)
    w = x @ k.transpose(1, 2)
    assert reprojection_loss(w, k, x).item() < 1e-5
    assert reprojection_loss(w, k, x, mode='l1').item() < 1e-6
    # one joint off by (3, 4) in one of 5 poses: Frobenius 5, batch mean 1
    w2 = w.clone()
    w2[2, 7] += torch.tensor([3., 4.])
    assert reprojection_loss(w2, k, x).item() == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(ValueError, match='frobenius'):
        reprojection_loss(w, k, x, mode='l2')


class LinearCritic(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.fc = nn.Linear(weight.numel(), 1)
        with torch.no_grad():
            self.fc.weight.copy_(weight.flatten()[None])

    def forward(self, x):
        return self.fc(x.flatten(1)).squeeze(1)


@pytest.mark.parametrize('norm', [0.5, 1.0, 3.0])
def test_gradient_penalty_of_linear_critic(norm):
    # D(x) = w.x + b has gradient w everywhere: penalty = lambda * (|w| - 1)^2 exactly
    w = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    w = w / w.norm() * norm
    real, fake = torch.randn(8, 16, 3), torch.randn(8, 16, 3)
    gp = gradient_penalty(LinearCritic(w), real, fake, weight=10.0)
    assert gp.item() == pytest.approx(10.0 * (norm - 1) ** 2, abs=1e-5)


def test_camera_rotation_recovers_rotation_of_scaled_orthographic_camera():
    rot = torch.stack([random_rotation(i) for i in range(3)])
    k = rot[:, :2] * torch.tensor([0.5, 2.0, 9.0])[:, None, None]
    torch.testing.assert_close(camera_rotation(k), rot, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- model
def small_model(tmp_path, **kwargs):
    cfg = dict(type='RepNet', num_keypoints=16, keypoint_indices=IDX16,
               backbone=dict(type='RepNetGenerator', width=32),
               critic=dict(type='RepNetCritic', width=16, kcs_width=32),
               pose3d_pool=dict(type='SyntheticPose3dPool', data_root=str(tmp_path)))
    cfg.update(kwargs)
    from mmpose.registry import MODELS
    return MODELS.build(cfg)


def optim_dict(model):
    adam = dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.9)))
    return RepNetOptimWrapperConstructor(dict(generator=adam, critic=adam))(model)


def batch(n=8, seed=0):
    poses = sample_poses(n, seed=seed)
    _, uv = project(poses, random_cameras(n, seed=seed))
    return dict(inputs=[torch.tensor(p[None], dtype=torch.float32) for p in uv])


def test_train_step_updates_both_optimizers(tmp_path):
    torch.manual_seed(0)
    model = small_model(tmp_path, critic_steps=3)
    ow = optim_dict(model)
    assert isinstance(ow, OptimWrapperDict) and set(ow.keys()) == {'generator', 'critic'}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log = model.train_step(batch(), ow)
    assert {'loss_rep', 'loss_cam', 'loss_adv', 'loss_critic', 'loss_gp'} <= set(log)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith('backbone.pose') for n in changed)
    assert any(n.startswith('backbone.camera') for n in changed)
    assert any(n.startswith('critic.k') for n in changed)  # KCS path trained too
    steps = lambda key: next(iter(ow[key].optimizer.state.values()))['step'].item()  # noqa
    assert steps('critic') == 3 and steps('generator') == 1
    # the generator's backward must leave no gradient on the critic
    assert all(p.grad is None or not p.grad.any() for p in model.critic.parameters())


def test_without_critic_only_the_generator_trains(tmp_path):
    model = small_model(tmp_path, adv_weight=0.0)
    ow = optim_dict(model)
    before = [p.detach().clone() for p in model.critic.parameters()]
    log = model.train_step(batch(), ow)
    assert 'loss_adv' not in log and 'loss_critic' not in log
    assert all(torch.equal(a, b) for a, b in zip(before, model.critic.parameters()))


def test_reprojection_and_camera_losses_decrease_without_critic(tmp_path):
    torch.manual_seed(0)
    model = small_model(tmp_path, adv_weight=0.0)
    ow = optim_dict(model)
    data = batch(32, seed=5)
    first = model.train_step(data, ow)
    for _ in range(150):
        last = model.train_step(data, ow)
    assert last['loss_rep'] < 0.3 * first['loss_rep']
    assert last['loss_cam'] < first['loss_cam']


def test_critic_learns_to_separate_real_from_generated(tmp_path):
    torch.manual_seed(0)
    model = small_model(tmp_path)
    adam = dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.9)))
    frozen = dict(optimizer=dict(type='SGD', lr=0.0))  # generator held fixed
    ow = RepNetOptimWrapperConstructor(dict(generator=frozen, critic=adam))(model)
    data = batch(32, seed=5)
    first = model.train_step(data, ow)['wasserstein']
    for _ in range(100):
        last = model.train_step(data, ow)['wasserstein']
    assert last > first + 0.5


def test_bad_inputs_raise_clear_errors(tmp_path):
    model = small_model(tmp_path)
    ow = optim_dict(model)
    good = batch(4)
    wrong_joints = dict(inputs=[x[:, :10] for x in good['inputs']])
    with pytest.raises(ValueError, match='joints'):
        model.train_step(wrong_joints, ow)
    nan = dict(inputs=[x.clone() for x in good['inputs']])
    nan['inputs'][1][0, 3, 0] = float('nan')
    with pytest.raises(ValueError, match=r'NaN.*\[\[1, 3\]\]'):
        model.train_step(nan, ow)
    with pytest.raises(ValueError, match=r'\(N, K, 2\)'):
        model.train_step(dict(inputs=[torch.zeros(34, 1)] * 2), ow)
    with pytest.raises(TypeError, match='OptimWrapperDict'):
        model.train_step(good, ow['generator'])
    with pytest.raises(ValueError, match=r'\(N, 16, 2\)'):
        RepNetGenerator(num_keypoints=16)(torch.zeros(2, 17, 2))
    with pytest.raises(ValueError, match='pool has 17 joints'):  # read on first use
        small_model(tmp_path, keypoint_indices=None).train_step(
            dict(inputs=[x[:, :16] for x in good['inputs']]), ow)
    with pytest.raises(ValueError, match='pose3d_pool'):
        small_model(tmp_path, pose3d_pool=None)
    with pytest.raises(ValueError, match='critic_steps'):
        small_model(tmp_path, critic_steps=0)


def test_normalize_2d_is_root_centred_and_scale_free():
    kp = torch.randn(3, 16, 2) * 50 + 400
    w = normalize_2d(kp)
    assert torch.all(w[:, 0] == 0)
    torch.testing.assert_close(normalize_2d(kp * 7 + 3), w, atol=1e-5, rtol=1e-5)
    assert w.pow(2).sum(-1).mean(-1).sqrt().tolist() == pytest.approx([1, 1, 1], rel=1e-5)


# ----------------------------------------------------------------------------- data + eval
def test_synthetic_poses_are_deterministic_and_within_joint_limits():
    a, b = make_split('val', num=300), make_split('val', num=300)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(make_split('pool', num=300)['S'], a['S'])
    world = torch.tensor(a['world'])
    # the skeleton is left/right symmetric and knees bend within [0, 150] degrees
    for left, right in symmetric_bone_pairs(17):
        torch.testing.assert_close(bone_lengths(world, [left]), bone_lengths(world, [right]))
    for hip, knee, foot in ((1, 2, 3), (4, 5, 6)):
        thigh, shin = world[:, knee] - world[:, hip], world[:, foot] - world[:, knee]
        cos = (thigh * shin).sum(-1) / thigh.norm(dim=-1) / shin.norm(dim=-1)
        angle = torch.rad2deg(torch.acos(cos.clamp(-1, 1)))
        assert angle.max() <= LIMITS['knee'][1] + 1e-3
    # the 2D is the perspective projection of the camera-frame 3D
    s, uv = a['S'][..., :3], a['part'][..., :2]
    assert (s[..., 2] > 2).all() and (uv > 0).all() and (uv < 1000).all()
    cams = random_cameras(300, seed=100 * 1 + 2)
    np.testing.assert_allclose(uv, cams['f'][:, None, None] * s[..., :2] / s[..., 2:] + 500,
                               rtol=1e-4)


def test_val_step_predictions_feed_mmpose_mpjpe_and_symmetry(tmp_path):
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    cfg = Config.fromfile(SYN_CFG)
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.data_root = str(tmp_path)
    ds = DATASETS.build(ds_cfg)
    assert len(ds) == 2000
    data = pseudo_collate([ds[i] for i in range(6)])
    model = small_model(tmp_path)
    model.eval()
    out = model.val_step(data)
    assert out[0].pred_instances.keypoints.shape == (1, 16, 3)
    assert out[0].gt_instances.lifting_target.shape == (1, 16, 3)
    # the ground-truth root is added back, as MMPose's lifters do
    np.testing.assert_allclose(out[0].pred_instances.keypoints[0, 0],
                               out[0].gt_instances.lifting_target[0, 0], atol=1e-5)
    from mmpose.evaluation.metrics import MPJPE
    results = {}
    for metric in (MPJPE(mode='mpjpe'), MPJPE(mode='p-mpjpe'), BoneSymmetryError(16)):
        metric.process(data, [s.to_dict() for s in out])
        results.update(metric.compute_metrics(metric.results))
    assert np.isfinite([results['MPJPE'], results['P-MPJPE'], results['symmetry_error']]).all()
    assert results['P-MPJPE'] <= results['MPJPE']


def test_bone_symmetry_error_hand_value():
    pose = sample_poses(1, seed=0)[0]
    metric = BoneSymmetryError(17)
    metric.process(None, [dict(pred_instances=dict(keypoints=pose[None]))])
    assert metric.compute_metrics(metric.results)['symmetry_error'] == pytest.approx(0, abs=1e-7)
    bent = pose.copy()
    forearm = bent[13] - bent[12]
    bent[13] = bent[12] + forearm * (1 + 0.06 / np.linalg.norm(forearm))  # left +6 cm
    metric = BoneSymmetryError(17)
    metric.process(None, [dict(pred_instances=dict(keypoints=bent[None]))])
    assert metric.compute_metrics(metric.results)['symmetry_error'] == pytest.approx(0.01)


def test_synthetic_files_are_generated_on_first_use(tmp_path):
    paths = ensure_generated(str(tmp_path), ['val'])
    assert osp.exists(paths['val'])
    first = np.load(paths['val'])['S']
    np.testing.assert_array_equal(first, make_split('val')['S'])
    with pytest.raises(ValueError, match='split'):
        DATASETS.build(dict(type='SyntheticPose3dDataset', split='test'))


# ----------------------------------------------------------------------------- mmengine runner
def tiny_cfg(tmp_path, work_dir, max_epochs):
    cfg = Config.fromfile(SYN_CFG)
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.width = 32
    cfg.model.critic.update(width=16, kcs_width=32)
    cfg.model.pose3d_pool.data_root = str(tmp_path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        # the 2000-pose val split loads 10x faster than train; which poses does not matter here
        cfg[loader].dataset.update(data_root=str(tmp_path), split='val')
        cfg[loader].dataset.indices = 128
        cfg[loader].batch_size = 32
    cfg.train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=100)
    cfg.param_scheduler = [
        dict(type='MultiStepLR', milestones=[1], gamma=0.1, by_epoch=True, end=10)]
    for key in ('generator', 'critic'):
        cfg.optim_wrapper[key].optimizer.lr = 2e-4
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.logger.interval = 1
    return cfg


def test_runner_trains_saves_and_resumes(tmp_path):
    from mmengine.runner import Runner
    work = tmp_path / 'work'
    runner = Runner.from_cfg(tiny_cfg(tmp_path, work, 1))
    runner.train()
    ckpt = work / 'epoch_1.pth'
    assert ckpt.exists()
    gen_steps = next(iter(runner.optim_wrapper['generator'].optimizer.state.values()))['step']
    assert gen_steps.item() == 4  # 128 samples / batch 32
    cfg = tiny_cfg(tmp_path, work, 2)
    cfg.resume, cfg.load_from = True, str(ckpt)
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.epoch == 2 and resumed.iter == 8
    assert (work / 'epoch_2.pth').exists()
    # both Adam states continued from the checkpoint; the lr schedule stepped past epoch 1
    for key in ('generator', 'critic'):
        state = next(iter(resumed.optim_wrapper[key].optimizer.state.values()))
        assert state['step'].item() == 8
        assert resumed.optim_wrapper[key].get_lr()['lr'][0] == pytest.approx(2e-5)


@pytest.mark.parametrize('variant', ['16j', '17j', 'det-17j'])
def test_h36m_configs_train_and_evaluate_on_h36m_layout_files(tmp_path, variant):
    """The Human3.6M configs, pointed at files in MMPose's Human3.6M layout (the synthetic
    splits under Human3.6M's file names; for the detected-2D config, the 2D keypoints plus
    noise as the detection files): one short epoch through mmengine's Runner."""
    from mmengine.runner import Runner
    joints = 16 if variant == '16j' else 17
    paths = ensure_generated(str(tmp_path), ['val'])
    ann = tmp_path / 'h36m' / 'annotation_body3d' / 'fps50'
    ann.mkdir(parents=True)
    (ann / 'h36m_train.npz').symlink_to(paths['val'])  # small file, loads fast
    (ann / 'h36m_test.npz').symlink_to(paths['val'])
    det = tmp_path / 'h36m' / 'joint_2d_det_files'
    det.mkdir()
    part = np.load(paths['val'])['part'].astype(np.float32)
    noisy = part.copy()
    noisy[..., :2] += np.random.default_rng(0).normal(0, 3, part[..., :2].shape)
    noisy[..., 2] = 0.9
    for split in ('train', 'test'):
        np.save(det / f'cpn_ft_h36m_dbb_{split}.npy', noisy)
    cfg = Config.fromfile(osp.join(ROOT, f'configs/repnet/repnet_fc1000_b32-20e_h36m-{variant}.py'))
    root = str(tmp_path / 'h36m') + '/'
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.pose3d_pool.data_root = root
    cfg.model.pose3d_pool.max_poses = 500
    cfg.model.backbone.width = 32
    cfg.model.critic.kcs_width = 32
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.update(data_root=root, indices=64)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
    runner = Runner.from_cfg(cfg)
    if variant.startswith('det'):
        # the 2D input is the detection file's, not the annotation's ground truth
        ds = runner.train_dataloader.dataset
        item = ds.get_data_info(0)
        np.testing.assert_allclose(item['keypoints'][0], noisy[ds.sequence_indices[0][0], :, :2],
                                   atol=1e-5)
        assert not np.allclose(item['keypoints'][0], part[ds.sequence_indices[0][0], :, :2])
    runner.train()
    metrics = runner.val_loop.run()
    assert {'MPJPE', 'P-MPJPE', 'symmetry_error'} <= set(metrics)
    assert runner.model.num_keypoints == joints


@pytest.mark.slow
def test_synthetic_config_with_train_and_test_tools(tmp_path):
    """tools/train.py (2 epochs of the synthetic config), --resume to 3, then tools/test.py."""
    import re
    import sys
    from conftest import run_tool
    work = str(tmp_path / 'work')
    opts = ['--cfg-options', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=1']
    res = run_tool([sys.executable, 'tools/train.py', SYN_CFG, '--work-dir', work, *opts])
    assert res.returncode == 0, res.stderr[-3000:]
    pa = [float(v) for v in re.findall(r'Epoch\(val\) \[\d+\]\[\d+/\d+\].*?P-MPJPE: ([\d.]+)',
                                       res.stdout + res.stderr)]
    assert len(pa) == 2 and pa[-1] < 0.3  # metres; untrained: ~0.42
    opts[2] = 'train_cfg.max_epochs=3'
    res = run_tool([sys.executable, 'tools/train.py', SYN_CFG, '--work-dir', work, '--resume',
                    *opts])
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'resumed epoch: 2' in res.stdout + res.stderr
    res = run_tool([sys.executable, 'tools/test.py', SYN_CFG, osp.join(work, 'epoch_3.pth'),
                    '--work-dir', work])
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert 'Epoch(test)' in out and 'symmetry_error' in out


def test_default_networks_follow_the_official_code():
    from mmext.pose.repnet import PAPER
    gen, critic = RepNetGenerator(num_keypoints=16), RepNetCritic(num_keypoints=16)
    assert gen.stem[0].out_features == PAPER['generator']['width'] == 1000
    assert len(gen.shared) == 1 and len(gen.camera) == 3 and gen.pose[-1].out_features == 48
    assert gen.stem[1].negative_slope == 0.3
    # stem 32->1000, 5 residual blocks (2 layers each), pose 1000->1000->48, camera 1000->6
    expected = (32 * 1000 + 1000) + 10 * (1000 * 1000 + 1000) + (1000 * 1000 + 1000) \
        + (1000 * 48 + 48) + (1000 * 6 + 6)
    assert sum(p.numel() for p in gen.parameters()) == expected
    assert critic.k1.in_features == 15 * 15 and critic.k1.out_features == 1000
    assert critic.p1.out_features == PAPER['critic']['width'] == 100


# ----------------------------------------------------------------------------- MMPose's APIs
H36M_CFG = osp.join(ROOT, 'configs/repnet/repnet_fc1000_b32-20e_h36m-{}j.py')


def small_h36m_cfg(joints, **model):
    """The Human3.6M config with narrow layers (a checkpoint of it needs no training)."""
    cfg = Config.fromfile(H36M_CFG.format(joints))
    cfg.model.backbone.width = 32
    cfg.model.critic.update(width=16, kcs_width=32)
    cfg.model.update(model)
    return cfg


def save_briefly_built_checkpoint(cfg, path):
    """A checkpoint of a freshly built model, as tools/train.py writes it (state_dict + meta)."""
    from mmpose.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(path))
    return model


def pose_2d_results(n=3, seed=0):
    """2D results as MMPose's 2D inferencer gives them: one PoseDataSample per person."""
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample
    poses = sample_poses(n, seed=seed)
    _, uv = project(poses, random_cameras(n, seed=seed))
    out = []
    for i, kp in enumerate(uv):
        s = PoseDataSample()
        s.gt_instances = InstanceData()
        s.pred_instances = InstanceData(keypoints=kp[None].astype(np.float32),
                                        keypoint_scores=np.ones((1, 17), np.float32),
                                        bboxes=np.array([[0, 0, 1000, 1000]], np.float32))
        s.track_id = i
        out.append(s)
    return out


@pytest.mark.parametrize('joints', [16, 17])
def test_init_model_and_inference_pose_lifter_model_run_a_repnet_checkpoint(tmp_path, joints):
    from mmpose.apis import inference_pose_lifter_model, init_model
    cfg = small_h36m_cfg(joints)
    built = save_briefly_built_checkpoint(cfg, tmp_path / 'repnet.pth')
    # no Human3.6M files here: building for inference must not read the 3D pose pool
    model = init_model(cfg, str(tmp_path / 'repnet.pth'), device='cpu')
    assert model.dataset_meta['num_keypoints'] == 17
    results_2d = pose_2d_results(3)
    out = inference_pose_lifter_model(model, [results_2d], with_track_id=False)
    assert len(out) == 3
    for res, res2d in zip(out, results_2d):
        kp = res.pred_instances.keypoints
        assert kp.shape == (1, joints, 3) and np.isfinite(kp).all()
        # the same numbers as the loaded weights give directly (target root 0 in the API)
        x, k = built.extract_feat(torch.tensor(res2d.pred_instances.keypoints))
        np.testing.assert_allclose(kp[0], (x @ camera_rotation(k).transpose(1, 2))[0].detach(),
                                   atol=1e-5)


@pytest.mark.parametrize('joints', [16, 17])
def test_flip_test_averages_the_mirrored_prediction_mirrored_back(tmp_path, joints):
    from mmpose.apis import inference_pose_lifter_model, init_model
    cfg = small_h36m_cfg(joints)
    save_briefly_built_checkpoint(cfg, tmp_path / 'repnet.pth')
    plain = init_model(copy.deepcopy(cfg), str(tmp_path / 'repnet.pth'), device='cpu')
    cfg.model.test_cfg.flip_test = True
    flip = init_model(cfg, str(tmp_path / 'repnet.pth'), device='cpu')
    assert flip.test_cfg['flip_test'] and not plain.test_cfg['flip_test']
    res2d = pose_2d_results(2)
    a = inference_pose_lifter_model(plain, [res2d], with_track_id=False)
    b = inference_pose_lifter_model(flip, [res2d], with_track_id=False)
    meta = plain.dataset_meta
    idx = plain.keypoint_indices or list(range(17))
    pos = {j: i for i, j in enumerate(idx)}
    sub_flip = [pos[meta['flip_indices'][j]] for j in idx]
    for s2d, ra, rb in zip(res2d, a, b):
        kp = s2d.pred_instances.keypoints.copy()
        mirrored = kp[:, meta['flip_indices']] * np.array([-1, 1], np.float32)
        m = inference_pose_lifter_model(plain, [[_with(s2d, mirrored)]], with_track_id=False)
        back = m[0].pred_instances.keypoints[0][sub_flip] * np.array([-1, 1, 1])
        expected = (ra.pred_instances.keypoints[0] + back) / 2
        np.testing.assert_allclose(rb.pred_instances.keypoints[0], expected, atol=1e-5)
        assert not np.allclose(rb.pred_instances.keypoints, ra.pred_instances.keypoints)


def _with(sample, keypoints):
    s = sample.clone()
    s.pred_instances.keypoints = keypoints
    return s


def test_predict_leaves_the_ground_truth_of_the_data_samples_alone(tmp_path):
    cfg = small_h36m_cfg(16)
    from mmpose.registry import MODELS
    paths = ensure_generated(str(tmp_path), ['val'])
    ds_cfg = Config.fromfile(SYN_CFG).val_dataloader.dataset
    ds_cfg.data_root = str(tmp_path)
    ds_cfg.pipeline = cfg.val_dataloader.dataset.pipeline  # the H36M config's pipeline
    assert osp.exists(paths['val'])
    ds = DATASETS.build(ds_cfg)
    data = pseudo_collate([ds[i] for i in range(4)])
    gt = [s.gt_instances.lifting_target.copy() for s in data['data_samples']]
    # the pipeline gave the target the model's 16 joints (from the 17 of the file)
    assert gt[0].shape == (1, 16, 3)
    full = ds.get_data_info(0)['lifting_target'][0]  # before the pipeline: 17 joints
    assert full.shape == (17, 3)
    np.testing.assert_allclose(gt[0][0], full[IDX16], atol=1e-6)
    model = MODELS.build(cfg.model).eval()
    out = model.test_step(data)
    for before, sample in zip(gt, out):
        np.testing.assert_array_equal(sample.gt_instances.lifting_target, before)
        assert sample.pred_instances.keypoints.shape == (1, 16, 3)


def test_mmpose_3d_inferencer_and_visualiser_run_repnet(tmp_path):
    """MMPoseInferencer with a 2D model (random weights, whole image as the person box) and
    RepNet as pose3d: the 3D keypoints and the visualiser's drawing come back."""
    from mmpose.apis import MMPoseInferencer
    cfg = small_h36m_cfg(17)
    save_briefly_built_checkpoint(cfg, tmp_path / 'repnet.pth')
    cfg_path = tmp_path / 'repnet.py'
    cfg.dump(str(cfg_path))
    pose2d = osp.join(ROOT, 'tests', 'configs', 'pose2d_tiny_coco.py')
    inferencer = MMPoseInferencer(pose2d=pose2d, det_model='whole_image',
                                  pose3d=str(cfg_path), pose3d_weights=str(tmp_path / 'repnet.pth'),
                                  device='cpu')
    img = (np.random.default_rng(0).uniform(0, 255, (96, 72, 3))).astype(np.uint8)
    result = next(inferencer(img, return_vis=True, show=False))
    pred = result['predictions'][0][0]
    assert np.asarray(pred['keypoints']).shape == (17, 3)
    vis = result['visualization'][0]
    assert vis.ndim == 3 and vis.shape[2] == 3
