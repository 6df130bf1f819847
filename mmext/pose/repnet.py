"""RepNet: weakly supervised 2D -> 3D human pose lifting with an adversarial reprojection network.

Wandt & Rosenhahn, "RepNet: Weakly Supervised Training of an Adversarial Reprojection Network
for 3D Human Pose Estimation", CVPR 2019 (arXiv:1902.09868). Official code: bastianwandt/RepNet
(Keras, ``train_repnet.py``), whose structure this follows; the figures below come from the
paper and that file.

* Generator: 2D keypoints (root-centred, scaled) -> fully connected 1000-wide layers with leaky
  ReLU and residual blocks -> 3D pose X (J x 3).
* Camera network: same input -> 6 numbers -> K in R^{2x3}; reprojection W' = K X.
* Critic: a plain fully connected path on X and a KCS path on Psi = B^T B, B = X C
  (:mod:`mmext.pose.kcs`), concatenated; trained as a WGAN-GP against an *unpaired* pool of
  real 3D poses. Paired 3D ground truth is used for evaluation only.
* Losses (paper Eqs. 3-4 vs. ``train_repnet.py``; both offered, see ``LOSS_VARIANTS``):

  ============  =============================  ==========================================
  loss          paper                          official code (default)
  ============  =============================  ==========================================
  L_rep         ||W - K X||_F                  ``weighted_pose_2d_loss``: sum_j w_j |W - KX|
                (``rep_loss='frobenius'``)     / 2J, w = 0 at the root, 0.1 at neck and head
                                               (``rep_loss='official'``; ``'l1'``: w = 1)
  L_cam         ||2/tr(KK^T) KK^T - I||_F      ``cam_loss``: sum of |entries| (L1)
                (``cam_loss='frobenius'``)     (``cam_loss='l1'``)
  KCS C         --                             ``kcs_layer``'s ``Ct`` (critic
                                               ``skeleton='official'``; needs the neck)
  ============  =============================  ==========================================

  The critic's default bone set is Human3.6M's skeleton (:func:`mmext.pose.kcs.h36m_skeleton`),
  because the official C needs the neck joint, which the 16-joint layout here (17 without
  ``neck_base``) lacks; the 17-joint config uses the official C.

Deviations from the paper, all taken from the official code: the camera network branches off a
residual block shared with the pose branch; Keras' LeakyReLU slope 0.3. Ours: 2D inputs and 3D
poses are centred on the root joint (the official ``eval_h36m.py`` centres 2D on the joint mean
and divides by the coordinates' std) so that MMPose's root-relative evaluation applies; the
critic step count per generator step is a config value (``critic_steps``; the official loop
alternates 1:1).

MMPose integration: :class:`RepNet` is a :class:`mmpose.models.PoseLifter` with the generator
as ``backbone`` and :class:`RepNetHead` as ``head``, so ``mmpose.apis.init_model``,
``inference_pose_lifter_model``, flip test (``test_cfg.flip_test``) and MMPose's 3D inferencer
and visualiser run it as any MMPose lifter.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import os.path as osp

import numpy as np
import torch
import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmcv.transforms import BaseTransform
from mmpose.models.heads.base_head import BaseHead
from mmpose.models.pose_estimators import PoseLifter
from mmpose.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS

from .kcs import (H36M_17_JOINTS, bone_matrix, check_edges, h36m_joint_names, h36m_skeleton,
                  kcs_matrix, official_bone_matrix)
from .synthetic_poses3d import DATA_ROOT, ensure_generated

# The paper's / official code's settings, as data (Sec. 3, Fig. 2; train_repnet.py).
PAPER = dict(
    generator=dict(width=1000, shared_blocks=1, pose_blocks=2, camera_blocks=2,
                   negative_slope=0.3),
    critic=dict(width=100, kcs_width=1000, negative_slope=0.3),
    loss=dict(adv_weight=1.0, rep_weight=1.0, cam_weight=1.0, gp_weight=10.0),
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.9)),
    batch_size=32,
    # Human3.6M MPJPE (mm) quoted for the paper with detected / ground-truth 2D keypoints;
    # taken from a secondary summary, not checked against the paper's tables (not used in tests)
    h36m_mpjpe_mm=dict(detected_2d=89.9, gt_2d=50.9),
)
# Joint weights of the official L_rep (``train_repnet.py``, ``weighted_pose_2d_loss``: the weight
# vector is 0 at official joint 6 = pelvis and 0.1 at joints 8, 9 = upper neck and head top,
# 1 elsewhere), by MMPose's Human3.6M joint names (:data:`mmext.pose.kcs.OFFICIAL_16_JOINTS`).
OFFICIAL_REP_JOINT_WEIGHTS = dict(root=0.0, neck_base=0.1, head=0.1)
LOSS_VARIANTS = dict(rep_loss=('official', 'l1', 'frobenius'), cam_loss=('l1', 'frobenius'))


# ----------------------------------------------------------------------------- losses
def camera_loss(k: Tensor, mode: str = 'l1') -> Tensor:
    """L_cam on M = 2 / tr(K K^T) K K^T - I_2, mean over the batch.

    ``mode='l1'`` (official code, ``train_repnet.py`` ``cam_loss``: sum of |M_ij|) or
    ``'frobenius'`` (paper Eq. 4: ||M||_F). Zero exactly when K is a scaled orthographic
    projection (orthogonal rows of equal norm).
    """
    if k.dim() != 3 or k.shape[1:] != (2, 3):
        raise ValueError(f'cameras must be (N, 2, 3), got shape {tuple(k.shape)}')
    kkt = k @ k.transpose(1, 2)
    tr = kkt.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-8)
    eye = torch.eye(2, dtype=k.dtype, device=k.device)
    m = (2 / tr[:, None, None] * kkt - eye).flatten(1)
    if mode == 'l1':
        return m.abs().sum(1).mean()
    if mode == 'frobenius':
        return m.norm(dim=1).mean()
    raise ValueError(f"cam_loss mode must be one of {LOSS_VARIANTS['cam_loss']}, got {mode!r}")


def reproject(k: Tensor, x: Tensor) -> Tensor:
    """W' = K X for poses x (N, J, 3) and cameras k (N, 2, 3) -> (N, J, 2)."""
    return x @ k.transpose(1, 2)


def reprojection_loss(w: Tensor, k: Tensor, x: Tensor, mode: str = 'frobenius',
                      joint_weights: Optional[Tensor] = None) -> Tensor:
    """L_rep between 2D poses w and their reprojection K X, mean over the batch.

    Args:
        w: 2D poses (N, J, 2). k: cameras (N, 2, 3). x: 3D poses (N, J, 3).
        mode: ``'frobenius'`` (paper Eq. 3: ||W - K X||_F per pose) or ``'l1'`` (official
            ``weighted_pose_2d_loss``: sum_j w_j (|dx_j| + |dy_j|) / 2J per pose).
        joint_weights: (J,) weights w_j of ``'l1'`` (default 1; the official code's are
            :data:`OFFICIAL_REP_JOINT_WEIGHTS`).
    """
    diff = w - reproject(k, x)
    if mode == 'frobenius':
        if joint_weights is not None:
            raise ValueError("joint_weights apply to rep_loss 'l1'/'official' only")
        return diff.flatten(1).norm(dim=1).mean()
    if mode == 'l1':
        diff = diff.abs()
        if joint_weights is not None:
            if joint_weights.shape != (w.shape[1], ):
                raise ValueError(f'joint_weights must be ({w.shape[1]},), got '
                                 f'{tuple(joint_weights.shape)}')
            diff = diff * joint_weights.to(diff)[None, :, None]
        return diff.sum((1, 2)).mean() / diff[0].numel()
    raise ValueError(f"reprojection loss mode must be 'frobenius' or 'l1', got {mode!r}")


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor,
                     weight: float = 10.0) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)||_2 - 1)^2].

    x_hat lies uniformly at random on the segment between a real and a generated pose.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), dtype=real.dtype,
                     device=real.device)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    grad, = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


# ----------------------------------------------------------------------------- networks
class _ResBlock(nn.Module):
    """Dense-LReLU-Dense, + input, LReLU (official code's residual block)."""

    def __init__(self, width: int, slope: float):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.fc2(self.act(self.fc1(x))))


@MODELS.register_module()
class RepNetGenerator(nn.Module):
    """Pose generator and camera network of RepNet: (N, J, 2) -> X (N, J, 3), K (N, 2, 3).

    Args:
        num_keypoints: J (16 or 17 for Human3.6M; any J >= 2 works).
        width: width of every hidden layer (paper: 1000).
        shared_blocks: residual blocks shared by both branches (official code: 1).
        pose_blocks: residual blocks of the pose branch (official: 2), then Dense + LReLU.
        camera_blocks: residual blocks of the camera branch (official: 2).
        negative_slope: LeakyReLU slope (Keras' default 0.3).
    """

    def __init__(self, num_keypoints: int = 16, width: int = 1000, shared_blocks: int = 1,
                 pose_blocks: int = 2, camera_blocks: int = 2, negative_slope: float = 0.3):
        super().__init__()
        if not isinstance(num_keypoints, int) or num_keypoints < 2:
            raise ValueError(f'num_keypoints must be an int >= 2, got {num_keypoints!r}')
        if width < 1 or min(shared_blocks, pose_blocks, camera_blocks) < 0:
            raise ValueError(f'width must be >= 1 and block counts >= 0, got width={width}, '
                             f'blocks={(shared_blocks, pose_blocks, camera_blocks)}')
        self.num_keypoints = num_keypoints
        act = nn.LeakyReLU(negative_slope)
        self.stem = nn.Sequential(nn.Linear(2 * num_keypoints, width), act)
        blocks = lambda n: [_ResBlock(width, negative_slope) for _ in range(n)]  # noqa: E731
        self.shared = nn.Sequential(*blocks(shared_blocks))
        self.pose = nn.Sequential(*blocks(pose_blocks), nn.Linear(width, width), act,
                                  nn.Linear(width, 3 * num_keypoints))
        self.camera = nn.Sequential(*blocks(camera_blocks), nn.Linear(width, 6))

    def forward(self, w: Tensor) -> Tuple[Tensor, Tensor]:
        if w.dim() != 3 or w.shape[1:] != (self.num_keypoints, 2):
            raise ValueError(f'RepNetGenerator expects 2D poses (N, {self.num_keypoints}, 2), '
                             f'got shape {tuple(w.shape)}')
        h = self.shared(self.stem(w.flatten(1)))
        x = self.pose(h).view(-1, self.num_keypoints, 3)
        k = self.camera(h).view(-1, 2, 3)
        return x, k


@MODELS.register_module()
class RepNetCritic(nn.Module):
    """RepNet's critic: a plain path on the pose and a KCS path on Psi, concatenated.

    Args:
        num_keypoints: J.
        skeleton: the bone matrix C: (parent, child) edges; ``None`` (default): Human3.6M's
            skeleton for 17 or 16 joints (:func:`mmext.pose.kcs.h36m_skeleton`);
            ``'official'``: the official code's C (``train_repnet.py`` ``kcs_layer``,
            :func:`mmext.pose.kcs.official_bone_matrix`), which needs ``joint_names``.
        joint_names: names of the J joints (MMPose's Human3.6M names), for
            ``skeleton='official'``; default: Human3.6M's 17 or 16 (17 without ``neck_base``).
        use_kcs: with the KCS path (paper) or the plain path alone (ablation).
        width: plain path and final layer width (official: 100).
        kcs_width: KCS path width (official: 1000).
        negative_slope: LeakyReLU slope (Keras' default 0.3).
    """

    def __init__(self, num_keypoints: int = 16, skeleton: Optional[Union[str, Sequence]] = None,
                 joint_names: Optional[Sequence[str]] = None, use_kcs: bool = True,
                 width: int = 100, kcs_width: int = 1000, negative_slope: float = 0.3):
        super().__init__()
        if isinstance(skeleton, str):
            if skeleton != 'official':
                raise ValueError(f"skeleton must be None, 'official' or (parent, child) edges, "
                                 f'got {skeleton!r}')
            names = joint_names if joint_names is not None else h36m_joint_names(num_keypoints)
            if len(names) != num_keypoints:
                raise ValueError(f'joint_names has {len(names)} names for {num_keypoints} joints')
            c = official_bone_matrix(names)
            self.skeleton = 'official'
        else:
            skeleton = h36m_skeleton(num_keypoints) if skeleton is None else skeleton
            self.skeleton = check_edges(skeleton, num_keypoints)
            c = bone_matrix(self.skeleton, num_keypoints)
        self.num_keypoints, self.use_kcs = num_keypoints, use_kcs
        self.act = nn.LeakyReLU(negative_slope)
        self.p1 = nn.Linear(3 * num_keypoints, width)
        self.p2, self.p3, self.p4 = (nn.Linear(width, width) for _ in range(3))
        head_in = width
        if use_kcs:
            nb = c.shape[1]
            self.register_buffer('bone_matrix', c, persistent=False)
            self.k1 = nn.Linear(nb * nb, kcs_width)
            self.k2, self.k3 = nn.Linear(kcs_width, kcs_width), nn.Linear(kcs_width, kcs_width)
            head_in += kcs_width
        self.head = nn.Sequential(nn.Linear(head_in, width), self.act, nn.Linear(width, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Critic score (N,) of poses (N, J, 3)."""
        if x.dim() != 3 or x.shape[1:] != (self.num_keypoints, 3):
            raise ValueError(f'RepNetCritic expects 3D poses (N, {self.num_keypoints}, 3), '
                             f'got shape {tuple(x.shape)}')
        d1 = self.act(self.p1(x.flatten(1)))
        d3 = self.act(d1 + self.p3(self.act(self.p2(d1))))
        feats = [self.p4(d3)]
        if self.use_kcs:
            psi = self.act(self.k1(kcs_matrix(x, self.bone_matrix).flatten(1)))
            feats.append(psi + self.k3(self.act(self.k2(psi))))
        return self.head(torch.cat(feats, 1)).squeeze(1)


# ----------------------------------------------------------------------------- 3D pool
@MODELS.register_module()
class Pose3dPool(nn.Module):
    """Unpaired real 3D poses for the critic, read from a Human3.6M-layout ``.npz``.

    Poses are root-centred; ``key='S'`` is MMPose's Human3.6M annotation (N, 17, 4: x, y, z in
    metres, visibility). The file is read on first use (the first critic step), not when the
    model is built: inference (``mmpose.apis.init_model``) needs no training data. Checkpoints
    do not carry the pool.

    Args:
        ann_file: the ``.npz`` file (relative to ``data_root``).
        data_root: folder of ``ann_file``.
        key: array holding the 3D joints.
        keypoint_indices: joints to keep (e.g. 16 of Human3.6M's 17), default all.
        root_index: joint the poses are centred on (after selection).
        max_poses: keep every k-th pose so that at most this many remain.
    """

    def __init__(self, ann_file: str, data_root: str = '', key: str = 'S',
                 keypoint_indices: Optional[Sequence[int]] = None, root_index: int = 0,
                 max_poses: Optional[int] = None):
        super().__init__()
        import os.path as osp
        self.path = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
        self.key, self.root_index, self.max_poses = key, root_index, max_poses
        self.keypoint_indices = None if keypoint_indices is None else list(keypoint_indices)
        self._poses: Optional[Tensor] = None

    def _load(self) -> Tensor:
        import os.path as osp
        if not osp.exists(self.path):
            raise FileNotFoundError(f'3D pose pool file not found: {self.path!r} (set the '
                                    "model's pose3d_pool.data_root / ann_file)")
        data = np.load(self.path, allow_pickle=False)  # a data file never runs code
        if self.key not in data:
            raise KeyError(f'{self.path!r} has no array {self.key!r}; it has '
                           f'{list(data.keys())}')
        poses = np.asarray(data[self.key], np.float32)[..., :3]
        if self.keypoint_indices is not None:
            if max(self.keypoint_indices) >= poses.shape[1]:
                raise ValueError(f'the 3D pose pool {self.path!r} has {poses.shape[1]} joints, '
                                 f'keypoint_indices {self.keypoint_indices} need more')
            poses = poses[:, self.keypoint_indices]
        if self.max_poses and len(poses) > self.max_poses:
            poses = poses[::int(np.ceil(len(poses) / self.max_poses))]
        return torch.from_numpy(poses - poses[:, self.root_index:self.root_index + 1])

    @property
    def poses(self) -> Tensor:
        if self._poses is None:
            self._poses = self._load()
        return self._poses

    @property
    def num_keypoints(self) -> int:
        return self.poses.shape[1]

    def sample(self, n: int, device=None) -> Tensor:
        """``n`` poses drawn with replacement, on ``device``."""
        poses = self.poses
        if device is not None and poses.device != torch.device(device):
            self._poses = poses = poses.to(device)
        return poses[torch.randint(len(poses), (n, ), device=poses.device)]


@MODELS.register_module()
class SyntheticPose3dPool(Pose3dPool):
    """The unpaired ``pool`` split of :mod:`mmext.pose.synthetic_poses3d` (generated on use)."""

    def __init__(self, data_root: str = DATA_ROOT, split: str = 'pool', seed: int = 0,
                 **kwargs):
        super().__init__(ann_file=osp.join(data_root, f'{split}.npz'), **kwargs)
        self.data_root, self.split, self.seed = data_root, split, seed

    def _load(self) -> Tensor:
        self.path = ensure_generated(self.data_root, [self.split], self.seed)[self.split]
        return super()._load()


# ----------------------------------------------------------------------------- helpers
def normalize_2d(kpts: Tensor, root_index: int = 0) -> Tensor:
    """Centre 2D poses (N, J, 2) on the root and divide by their RMS distance from it.

    The official code centres on the joint mean and divides by the coordinates' std; a
    scale-free input is what lets the camera network absorb the person's image size.
    """
    w = kpts - kpts[:, root_index:root_index + 1]
    scale = w.pow(2).sum(-1).mean(-1).sqrt().clamp_min(1e-6)
    return w / scale[:, None, None]


def camera_rotation(k: Tensor) -> Tensor:
    """The rotation (N, 3, 3) of a weak-perspective camera K: its nearest row-orthonormal
    2x3 matrix (polar decomposition), completed by the cross product (det = +1)."""
    u, _, vh = torch.linalg.svd(k, full_matrices=False)
    r12 = u @ vh
    return torch.cat([r12, torch.cross(r12[:, 0], r12[:, 1], dim=-1)[:, None]], 1)


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


# ----------------------------------------------------------------------------- MMPose head
def subset_flip_indices(flip_indices: Sequence[int],
                        keypoint_indices: Optional[Sequence[int]]) -> List[int]:
    """The dataset's ``flip_indices`` restricted to ``keypoint_indices`` (positions therein)."""
    flip_indices = [int(i) for i in flip_indices]
    if keypoint_indices is None:
        return flip_indices
    pos = {k: i for i, k in enumerate(keypoint_indices)}
    out = []
    for k in keypoint_indices:
        if k >= len(flip_indices) or flip_indices[k] not in pos:
            raise ValueError(f'flip test: joint {k} mirrors to a joint outside keypoint_indices '
                             f'{list(keypoint_indices)} (flip_indices {flip_indices})')
        out.append(pos[flip_indices[k]])
    return out


@MODELS.register_module()
class RepNetHead(BaseHead):
    """RepNet's decoder as an MMPose head (no parameters): (X, K) -> camera-frame 3D poses.

    X is rotated into the camera frame by K's rotation (:func:`camera_rotation`, so depth
    points away from the camera as in Human3.6M's camera coordinates) and, as MMPose's lifting
    heads (``TemporalRegressionHead.predict``), the ``target_root`` of the data sample is
    added back, so MMPose's ``MPJPE`` metric applies unchanged.

    Flip test (``test_cfg.flip_test``, run by :meth:`PoseLifter.predict`, which lifts the
    mirrored 2D input too): the mirrored prediction is mirrored back (x -> -x, left/right joints
    swapped by the data sample's ``flip_indices``, restricted to ``keypoint_indices``) and
    averaged with the plain one, as ``MotionRegressionHead.predict`` does.

    Args:
        num_keypoints: J predicted.
        keypoint_indices: the dataset joints the model predicts (for ``flip_indices``).
        init_cfg: unused (no parameters).
    """

    def __init__(self, num_keypoints: int = 16,
                 keypoint_indices: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.num_keypoints = num_keypoints
        self.keypoint_indices = None if keypoint_indices is None else list(keypoint_indices)

    def forward(self, feats: Tuple[Tensor, Tensor]) -> Tensor:
        """Root-relative 3D poses (N, J, 3) in the camera frame from (X, K)."""
        x, k = feats
        return x @ camera_rotation(k).transpose(1, 2)

    def predict(self, feats, batch_data_samples, test_cfg: dict = {}) -> list:
        if test_cfg.get('flip_test', False):
            if not (isinstance(feats, list) and len(feats) == 2):
                raise ValueError('flip_test expects [features, mirrored features] from '
                                 f'PoseLifter.predict, got {type(feats).__name__}')
            flip = subset_flip_indices(batch_data_samples[0].metainfo['flip_indices'],
                                       self.keypoint_indices)
            plain, mirrored = self.forward(feats[0]), self.forward(feats[1])
            mirrored = mirrored[:, flip] * mirrored.new_tensor([-1.0, 1.0, 1.0])
            coords = (plain + mirrored) * 0.5
        else:
            coords = self.forward(feats)
        coords = coords.detach().cpu().numpy()
        preds = []
        for pose, sample in zip(coords, batch_data_samples):
            root = sample.metainfo.get('target_root', None)
            if root is not None:
                pose = pose + np.asarray(root, np.float32).reshape(1, 3)
            preds.append(InstanceData(keypoints=pose[None].astype(np.float32),
                                      keypoint_scores=np.ones((1, len(pose)), np.float32)))
        return preds

    def loss(self, feats, batch_data_samples, train_cfg: dict = {}) -> dict:
        raise NotImplementedError('RepNet\'s losses need the 2D input and the critic: they are '
                                  'computed by RepNet.loss / RepNet.train_step, not the head')


@TRANSFORMS.register_module()
class LiftingTargetSubset(BaseTransform):
    """Keep only ``keypoint_indices`` of the 3D ground truth (after ``GenerateTarget``).

    For a lifter that predicts a subset of the dataset's joints (RepNet with 16 of
    Human3.6M's 17): the evaluation target then has the joints the model predicts, while the
    2D input keeps all of them (the model selects its own). Applies to ``lifting_target``,
    ``lifting_target_visible``, ``lifting_target_label``, ``lifting_target_weight`` and
    ``trajectory_weights`` where present.

    Args:
        keypoint_indices: joints to keep, in the order the model predicts them.
    """
    KEYS = ('lifting_target', 'lifting_target_visible', 'lifting_target_label',
            'lifting_target_weight', 'trajectory_weights')

    def __init__(self, keypoint_indices: Sequence[int]):
        super().__init__()
        self.keypoint_indices = [int(i) for i in keypoint_indices]
        if not self.keypoint_indices or min(self.keypoint_indices) < 0:
            raise ValueError('LiftingTargetSubset: keypoint_indices must be non-negative joint '
                             f'indices, got {list(keypoint_indices)}')

    def transform(self, results: dict) -> dict:
        if 'lifting_target' not in results:
            raise KeyError('LiftingTargetSubset needs results["lifting_target"] (3D targets)')
        num = np.asarray(results['lifting_target']).shape[-2]
        if max(self.keypoint_indices) >= num:
            raise ValueError(f'LiftingTargetSubset: keypoint_indices {self.keypoint_indices} '
                             f'out of range for {num} joints')
        for key in self.KEYS:
            if key not in results:
                continue
            arr = np.asarray(results[key])
            # joints are the axis of size `num`: -2 for (.., K, C) arrays, -1 for (.., K)
            axis = -2 if arr.ndim >= 2 and arr.shape[-2] == num else -1
            if arr.shape[axis] != num:
                continue
            results[key] = np.take(arr, self.keypoint_indices, axis=axis)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keypoint_indices={self.keypoint_indices})'


# ----------------------------------------------------------------------------- the model
@MODELS.register_module()
class RepNet(PoseLifter):
    """RepNet trained by alternating critic and generator updates (WGAN-GP).

    An MMPose :class:`PoseLifter`: ``backbone`` is the :class:`RepNetGenerator` (pose and
    camera network), ``head`` the parameter-free :class:`RepNetHead` decoder; prediction,
    flip test and ``add_pred_to_datasample`` are PoseLifter's. The data samples' ground truth
    is never modified: a 16-of-17-joint model is evaluated against a 16-joint target made by
    the data pipeline (:class:`LiftingTargetSubset`).

    The model's ``train_step`` needs an :class:`mmengine.optim.OptimWrapperDict` with keys
    ``generator`` (generator + camera network) and ``critic``; build it in a config with
    ``optim_wrapper = dict(constructor='RepNetOptimWrapperConstructor', generator=dict(...),
    critic=dict(...))``. Every training iteration runs ``critic_steps`` critic updates (each
    with a fresh sample of real 3D poses from the pool) and then one generator update.

    Args:
        backbone: :class:`RepNetGenerator` config (``generator=`` is accepted as an alias).
        critic: :class:`RepNetCritic` config.
        pose3d_pool: :class:`Pose3dPool` (or subclass) config: the unpaired 3D poses.
        head: decoder config, default ``dict(type='RepNetHead')``.
        num_keypoints: J the networks work on.
        keypoint_indices: joints to take from the dataset's 2D input (e.g. 16 of Human3.6M's
            17); pair with ``LiftingTargetSubset`` in the pipeline for evaluation.
        joint_names: names of the J joints (for the official loss weights and KCS matrix);
            default: MMPose's Human3.6M names of ``keypoint_indices`` (or of the 16/17).
        root_index: root joint (after selection).
        adv_weight, rep_weight, cam_weight, gp_weight: loss weights (paper: 1, 1, 1, 10).
            ``adv_weight=0`` trains without the critic (ablation).
        critic_steps: critic updates per generator update (official code: 1).
        rep_loss: ``'official'`` (default: joint-weighted L1, :data:`OFFICIAL_REP_JOINT_WEIGHTS`),
            ``'l1'`` (unweighted) or ``'frobenius'`` (paper Eq. 3).
        rep_joint_weights: ``{joint name: weight}`` for ``rep_loss='official'`` (joints not
            named weigh 1); default :data:`OFFICIAL_REP_JOINT_WEIGHTS`.
        cam_loss: ``'l1'`` (default, official code) or ``'frobenius'`` (paper Eq. 4).
        data_preprocessor, init_cfg, metainfo, test_cfg, train_cfg: as :class:`PoseLifter`.
    """

    def __init__(self, backbone: Optional[dict] = None, critic: Optional[dict] = None,
                 pose3d_pool: Optional[dict] = None, head: Optional[dict] = None,
                 num_keypoints: int = 16, keypoint_indices: Optional[Sequence[int]] = None,
                 joint_names: Optional[Sequence[str]] = None,
                 root_index: int = 0, adv_weight: float = 1.0, rep_weight: float = 1.0,
                 cam_weight: float = 1.0, gp_weight: float = 10.0, critic_steps: int = 1,
                 rep_loss: str = 'official', rep_joint_weights: Optional[dict] = None,
                 cam_loss: str = 'l1', data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None, metainfo: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 generator: Optional[dict] = None):
        if generator is not None:
            if backbone is not None:
                raise ValueError('RepNet: give the generator as backbone= or generator=, '
                                 'not both')
            backbone = generator
        if backbone is None or critic is None:
            raise ValueError('RepNet needs backbone (RepNetGenerator) and critic '
                             '(RepNetCritic) configs')
        if not isinstance(critic_steps, int) or critic_steps < 1:
            raise ValueError(f'critic_steps must be an int >= 1, got {critic_steps!r}')
        if rep_loss not in LOSS_VARIANTS['rep_loss']:
            raise ValueError(f"rep_loss must be one of {LOSS_VARIANTS['rep_loss']}, "
                             f'got {rep_loss!r}')
        if cam_loss not in LOSS_VARIANTS['cam_loss']:
            raise ValueError(f"cam_loss must be one of {LOSS_VARIANTS['cam_loss']}, "
                             f'got {cam_loss!r}')
        if not 0 <= root_index < num_keypoints:
            raise ValueError(f'root_index={root_index} out of range for {num_keypoints} joints')
        if keypoint_indices is not None:
            keypoint_indices = [int(i) for i in keypoint_indices]
            if len(keypoint_indices) != num_keypoints or min(keypoint_indices) < 0:
                raise ValueError(f'keypoint_indices must list {num_keypoints} non-negative '
                                 f'joint indices, got {keypoint_indices}')
        if joint_names is None:
            if keypoint_indices is not None and max(keypoint_indices) < 17:
                joint_names = [H36M_17_JOINTS[i] for i in keypoint_indices]
            elif num_keypoints in (16, 17):
                joint_names = list(h36m_joint_names(num_keypoints))
        critic = dict(critic, num_keypoints=num_keypoints)
        if critic.get('skeleton') == 'official' and joint_names is not None:
            critic.setdefault('joint_names', joint_names)
        head = dict(head or dict(type='RepNetHead'))
        head.setdefault('num_keypoints', num_keypoints)
        head.setdefault('keypoint_indices', keypoint_indices)
        super().__init__(backbone=dict(backbone, num_keypoints=num_keypoints), head=head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg,
                         metainfo=metainfo)
        self.num_keypoints, self.keypoint_indices = num_keypoints, keypoint_indices
        self.joint_names = None if joint_names is None else list(joint_names)
        self.root_index, self.critic_steps = root_index, critic_steps
        self.rep_loss, self.cam_loss = rep_loss, cam_loss
        self.adv_weight, self.rep_weight = float(adv_weight), float(rep_weight)
        self.cam_weight, self.gp_weight = float(cam_weight), float(gp_weight)
        self.register_buffer('rep_joint_weights',
                             self._joint_weights(rep_joint_weights), persistent=False)
        self.critic = MODELS.build(critic)
        self.pool = None
        if pose3d_pool is not None:
            pool_cfg = dict(pose3d_pool)
            pool_cfg.setdefault('keypoint_indices', keypoint_indices)
            pool_cfg.setdefault('root_index', root_index)
            self.pool = MODELS.build(pool_cfg)
        elif self.adv_weight > 0:
            raise ValueError('adv_weight > 0 needs pose3d_pool: the critic learns from '
                             'unpaired real 3D poses')

    def _joint_weights(self, weights: Optional[dict]) -> Tensor:
        """Per-joint L_rep weights (J,) for ``rep_loss='official'``; ones otherwise."""
        out = torch.ones(self.num_keypoints)
        if self.rep_loss != 'official':
            if weights is not None:
                raise ValueError("rep_joint_weights apply to rep_loss='official' only")
            return out
        weights = OFFICIAL_REP_JOINT_WEIGHTS if weights is None else dict(weights)
        if self.joint_names is None:
            raise ValueError("rep_loss='official' weighs joints by name: give joint_names for "
                             f'a {self.num_keypoints}-joint layout')
        unknown = sorted(set(weights) - set(OFFICIAL_REP_JOINT_WEIGHTS) - set(self.joint_names))
        if unknown:
            raise ValueError(f'rep_joint_weights names unknown joints {unknown}; the layout has '
                             f'{self.joint_names}')
        for name, w in weights.items():
            if name in self.joint_names:
                out[self.joint_names.index(name)] = float(w)
        return out

    def sample_real(self, n: int, device) -> Tensor:
        """``n`` real 3D poses from the pool (read on first use), checked against J."""
        real = self.pool.sample(n, device)
        if real.shape[1] != self.num_keypoints:
            raise ValueError(f'the 3D pose pool has {real.shape[1]} joints, the model '
                             f'{self.num_keypoints}; set keypoint_indices')
        return real

    @property
    def generator(self) -> RepNetGenerator:
        return self.backbone

    @property
    def causal(self) -> bool:
        """Single-frame lifter: the frame lifted is the last (and only) one of its sequence."""
        return True

    # -- inputs -----------------------------------------------------------------
    def _to_2d(self, inputs) -> Tensor:
        """Inputs from MMPose's lifting pipeline -> normalised (N, J, 2), validated."""
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if inputs.dim() == 4 and inputs.shape[1] == 1:  # (N, T=1, K, 2)
            inputs = inputs[:, 0]
        if inputs.dim() != 3 or inputs.shape[-1] != 2:
            raise ValueError('RepNet expects 2D keypoints shaped (N, K, 2) or (N, 1, K, 2) '
                             "(codec ImagePoseLifting with reshape_keypoints=False), got "
                             f'shape {tuple(inputs.shape)}')
        if self.keypoint_indices is not None:
            if inputs.shape[1] <= max(self.keypoint_indices):
                raise ValueError(f'inputs have {inputs.shape[1]} joints, keypoint_indices '
                                 f'needs at least {max(self.keypoint_indices) + 1}')
            inputs = inputs[:, self.keypoint_indices]
        if inputs.shape[1] != self.num_keypoints:
            raise ValueError(f'RepNet was built for {self.num_keypoints} joints, the inputs '
                             f'have {inputs.shape[1]} (set num_keypoints/keypoint_indices)')
        if not torch.isfinite(inputs).all():
            bad = (~torch.isfinite(inputs)).any(-1).nonzero()[:4].tolist()
            raise ValueError(f'2D keypoints contain NaN/inf at (sample, joint) {bad}: '
                             'drop or fill missing joints before lifting')
        return normalize_2d(inputs.float(), self.root_index)

    def lift(self, w: Tensor) -> Tuple[Tensor, Tensor]:
        """Root-centred 3D poses (N, J, 3) and cameras (N, 2, 3) from normalised 2D."""
        x, k = self.generator(w)
        return x - x[:, self.root_index:self.root_index + 1], k

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """(X, K) from MMPose's lifting inputs: PoseLifter.predict / _forward call this."""
        return self.lift(self._to_2d(inputs))

    # -- losses -----------------------------------------------------------------
    def critic_losses(self, real: Tensor, fake: Tensor) -> Dict[str, Tensor]:
        """Critic's WGAN-GP losses: E[D(fake)] - E[D(real)] and the gradient penalty."""
        d_real, d_fake = self.critic(real), self.critic(fake.detach())
        return dict(loss_critic=d_fake.mean() - d_real.mean(),
                    loss_gp=gradient_penalty(self.critic, real, fake, self.gp_weight))

    def generator_losses(self, w: Tensor, x: Tensor, k: Tensor) -> Dict[str, Tensor]:
        if self.rep_loss == 'frobenius':
            rep = reprojection_loss(w, k, x, 'frobenius')
        else:
            weights = self.rep_joint_weights if self.rep_loss == 'official' else None
            rep = reprojection_loss(w, k, x, 'l1', weights)
        losses = dict(loss_rep=self.rep_weight * rep,
                      loss_cam=self.cam_weight * camera_loss(k, self.cam_loss))
        if self.adv_weight > 0:
            losses['loss_adv'] = -self.adv_weight * self.critic(x).mean()
        return losses

    def loss(self, inputs: Tensor, data_samples=None) -> Dict[str, Tensor]:
        """Generator losses (and, with a critic, the critic's) for one batch; no update."""
        w = self._to_2d(inputs)
        x, k = self.lift(w)
        losses = self.generator_losses(w, x, k)
        if self.adv_weight > 0:
            losses.update(self.critic_losses(self.sample_real(len(w), w.device), x))
        return losses

    def train_step(self, data, optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """``critic_steps`` critic updates, then one generator update (official loop)."""
        if not isinstance(optim_wrapper, OptimWrapperDict) or \
                'generator' not in optim_wrapper.optim_wrappers:
            raise TypeError('RepNet.train_step needs an OptimWrapperDict with keys '
                            "'generator' and 'critic' (optim_wrapper = dict(constructor="
                            f"'RepNetOptimWrapperConstructor', ...)), got {type(optim_wrapper)}")
        data = self.data_preprocessor(data, True)
        w = self._to_2d(data['inputs'])
        log_vars = {}
        if self.adv_weight > 0:
            if 'critic' not in optim_wrapper.optim_wrappers:
                raise TypeError("RepNet with adv_weight > 0 needs a 'critic' optim wrapper")
            c_opt = optim_wrapper['critic']
            with torch.no_grad():
                fake = self.lift(w)[0]
            for _ in range(self.critic_steps):
                with c_opt.optim_context(self.critic):
                    losses = self.critic_losses(self.sample_real(len(w), w.device), fake)
                    loss, c_vars = self.parse_losses(losses)
                c_opt.update_params(loss)
            c_vars.pop('loss')
            log_vars.update(c_vars)
            log_vars['wasserstein'] = -c_vars['loss_critic']
        g_opt = optim_wrapper['generator']
        # the critic is frozen for the generator's backward pass: its parameters must not
        # collect gradients that the next critic update would add to its own
        _set_requires_grad(self.critic, False)
        try:
            with g_opt.optim_context(self.generator):
                x, k = self.lift(w)
                loss, g_vars = self.parse_losses(self.generator_losses(w, x, k))
            g_opt.update_params(loss)
        finally:
            _set_requires_grad(self.critic, True)
        log_vars.update(g_vars)
        return {k: v.detach() for k, v in log_vars.items()}


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class RepNetOptimWrapperConstructor:
    """One optimizer per named sub-network -> :class:`OptimWrapperDict`.

    ``optim_wrapper = dict(constructor='RepNetOptimWrapperConstructor', generator=dict(
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.9))), critic=dict(...))``: every key
    names a model attribute (``model.generator``, ``model.critic``) and holds an ordinary
    optim-wrapper config, built by mmengine's default constructor for that sub-network.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        if not isinstance(optim_wrapper_cfg, dict) or not optim_wrapper_cfg:
            raise TypeError('optim_wrapper_cfg must be a dict of {sub-network: optim wrapper '
                            f'config}}, got {optim_wrapper_cfg!r}')
        self.cfgs = {k: dict(v) for k, v in optim_wrapper_cfg.items()}
        self.paramwise_cfg = paramwise_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = getattr(model, 'module', model)
        wrappers = {}
        for name, cfg in self.cfgs.items():
            sub = getattr(model, name, None)
            if not isinstance(sub, nn.Module):
                raise ValueError(f'optim_wrapper key {name!r} names no sub-network of '
                                 f'{type(model).__name__}')
            cfg.setdefault('type', 'OptimWrapper')
            paramwise = cfg.pop('paramwise_cfg', self.paramwise_cfg)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(sub)
        return OptimWrapperDict(**wrappers)
