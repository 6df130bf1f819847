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
* Losses: Wasserstein + gradient penalty (weight 10), L_rep = ||W - K X||_F and
  L_cam = ||2 / tr(K K^T) K K^T - I_2||_F.

Deviations from the paper, all taken from the official code: the camera network branches off a
residual block shared with the pose branch; Keras' LeakyReLU slope 0.3. Ours: 2D inputs and 3D
poses are centred on the root joint (the official code centres 2D on the joint mean) so that
MMPose's root-relative evaluation applies; the critic step count per generator step is a
config value (``critic_steps``; the official loop alternates 1:1).
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmpose.models.pose_estimators import PoseLifter
from mmpose.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

from .kcs import bone_matrix, check_edges, h36m_skeleton, kcs_matrix
from .synthetic_poses3d import DATA_ROOT, ensure_generated

# The paper's / official code's settings, as data (Sec. 3, Fig. 2; train_repnet.py).
PAPER = dict(
    generator=dict(width=1000, shared_blocks=1, pose_blocks=2, camera_blocks=2,
                   negative_slope=0.3),
    critic=dict(width=100, kcs_width=1000, negative_slope=0.3),
    loss=dict(adv_weight=1.0, rep_weight=1.0, cam_weight=1.0, gp_weight=10.0),
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.9)),
    batch_size=32,
    # Human3.6M MPJPE in mm as quoted by the project's REFERENCE.md (marked secondary there;
    # the paper evaluates after aligning the prediction to the ground truth)
    h36m_mpjpe_mm=dict(detected_2d=89.9, gt_2d=50.9),
)


# ----------------------------------------------------------------------------- losses
def camera_loss(k: Tensor) -> Tensor:
    """L_cam = || 2 / tr(K K^T) K K^T - I_2 ||_F, mean over the batch (paper Eq. 4).

    Zero exactly when K is a scaled orthographic projection (orthogonal rows of equal norm).
    """
    if k.dim() != 3 or k.shape[1:] != (2, 3):
        raise ValueError(f'cameras must be (N, 2, 3), got shape {tuple(k.shape)}')
    kkt = k @ k.transpose(1, 2)
    tr = kkt.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-8)
    eye = torch.eye(2, dtype=k.dtype, device=k.device)
    return (2 / tr[:, None, None] * kkt - eye).flatten(1).norm(dim=1).mean()


def reproject(k: Tensor, x: Tensor) -> Tensor:
    """W' = K X for poses x (N, J, 3) and cameras k (N, 2, 3) -> (N, J, 2)."""
    return x @ k.transpose(1, 2)


def reprojection_loss(w: Tensor, k: Tensor, x: Tensor, mode: str = 'frobenius') -> Tensor:
    """L_rep = ||W - K X||_F per pose (paper Eq. 3), mean over the batch.

    Args:
        w: 2D poses (N, J, 2). k: cameras (N, 2, 3). x: 3D poses (N, J, 3).
        mode: ``'frobenius'`` (paper) or ``'l1'`` (official code: mean absolute difference).
    """
    diff = w - reproject(k, x)
    if mode == 'frobenius':
        return diff.flatten(1).norm(dim=1).mean()
    if mode == 'l1':
        return diff.abs().mean()
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
        skeleton: (parent, child) edges defining the bone matrix C; default: Human3.6M's
            skeleton for 17 or 16 joints.
        use_kcs: with the KCS path (paper) or the plain path alone (ablation).
        width: plain path and final layer width (official: 100).
        kcs_width: KCS path width (official: 1000).
        negative_slope: LeakyReLU slope (Keras' default 0.3).
    """

    def __init__(self, num_keypoints: int = 16, skeleton: Optional[Sequence] = None,
                 use_kcs: bool = True, width: int = 100, kcs_width: int = 1000,
                 negative_slope: float = 0.3):
        super().__init__()
        skeleton = h36m_skeleton(num_keypoints) if skeleton is None else skeleton
        self.skeleton = check_edges(skeleton, num_keypoints)
        self.num_keypoints, self.use_kcs = num_keypoints, use_kcs
        self.act = nn.LeakyReLU(negative_slope)
        self.p1 = nn.Linear(3 * num_keypoints, width)
        self.p2, self.p3, self.p4 = (nn.Linear(width, width) for _ in range(3))
        head_in = width
        if use_kcs:
            nb = len(self.skeleton)
            self.register_buffer('bone_matrix', bone_matrix(self.skeleton, num_keypoints),
                                 persistent=False)
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
    metres, visibility). The pool is a non-persistent buffer: checkpoints do not carry it.

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
        path = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
        if not osp.exists(path):
            raise FileNotFoundError(f'3D pose pool file not found: {path!r} (set the '
                                    f"model's pose3d_pool.data_root / ann_file)")
        data = np.load(path)
        if key not in data:
            raise KeyError(f'{path!r} has no array {key!r}; it has {list(data.keys())}')
        poses = np.asarray(data[key], np.float32)[..., :3]
        if keypoint_indices is not None:
            poses = poses[:, list(keypoint_indices)]
        if max_poses and len(poses) > max_poses:
            poses = poses[::int(np.ceil(len(poses) / max_poses))]
        poses = poses - poses[:, root_index:root_index + 1]
        self.register_buffer('poses', torch.from_numpy(poses), persistent=False)

    @property
    def num_keypoints(self) -> int:
        return self.poses.shape[1]

    def sample(self, n: int) -> Tensor:
        return self.poses[torch.randint(len(self.poses), (n, ), device=self.poses.device)]


@MODELS.register_module()
class SyntheticPose3dPool(Pose3dPool):
    """The unpaired ``pool`` split of :mod:`mmext.pose.synthetic_poses3d` (generated on use)."""

    def __init__(self, data_root: str = DATA_ROOT, split: str = 'pool', seed: int = 0,
                 **kwargs):
        path = ensure_generated(data_root, [split], seed)[split]
        super().__init__(ann_file=path, **kwargs)


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


# ----------------------------------------------------------------------------- the model
@MODELS.register_module()
class RepNet(PoseLifter):
    """RepNet trained by alternating critic and generator updates (WGAN-GP).

    The model's ``train_step`` needs an :class:`mmengine.optim.OptimWrapperDict` with keys
    ``generator`` (generator + camera network) and ``critic``; build it in a config with
    ``optim_wrapper = dict(constructor='RepNetOptimWrapperConstructor', generator=dict(...),
    critic=dict(...))``. Every training iteration runs ``critic_steps`` critic updates (each
    with a fresh sample of real 3D poses from the pool) and then one generator update.

    Prediction: X is turned into the camera frame by K's rotation (so depth points away from
    the camera as in Human3.6M's camera coordinates) and, like MMPose's lifters, the ground
    truth root (``target_root`` from the codec) is added, so MMPose's ``MPJPE`` metric
    (modes ``mpjpe``, ``p-mpjpe``, ``n-mpjpe``) applies unchanged.

    Args:
        generator: :class:`RepNetGenerator` config.
        critic: :class:`RepNetCritic` config.
        pose3d_pool: :class:`Pose3dPool` (or subclass) config: the unpaired 3D poses.
        num_keypoints: J the networks work on.
        keypoint_indices: joints to take from the dataset's (e.g. 16 of Human3.6M's 17); the
            evaluation ground truth is reduced to the same joints.
        root_index: root joint (after selection).
        adv_weight, rep_weight, cam_weight, gp_weight: loss weights (paper: 1, 1, 1, 10).
            ``adv_weight=0`` trains without the critic (ablation).
        critic_steps: critic updates per generator update (official code: 1).
        rep_loss: ``'frobenius'`` (paper) or ``'l1'`` (official code).
        data_preprocessor, init_cfg, metainfo, test_cfg: as :class:`PoseLifter`.
    """

    def __init__(self, generator: dict, critic: dict, pose3d_pool: Optional[dict] = None,
                 num_keypoints: int = 16, keypoint_indices: Optional[Sequence[int]] = None,
                 root_index: int = 0, adv_weight: float = 1.0, rep_weight: float = 1.0,
                 cam_weight: float = 1.0, gp_weight: float = 10.0, critic_steps: int = 1,
                 rep_loss: str = 'frobenius', data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None, metainfo: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, train_cfg: Optional[dict] = None):
        generator = dict(generator, num_keypoints=num_keypoints)
        critic = dict(critic, num_keypoints=num_keypoints)
        # PoseLifter's/BasePoseEstimator's __init__ insists on a keypoint head (mmpose's
        # check_and_update_config copies it); RepNet has none, so set up what they would:
        # the data preprocessor, metainfo, train/test cfg and the backbone (= generator).
        BaseModel.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.metainfo = self._load_metainfo(metainfo)
        self.train_cfg, self.test_cfg = train_cfg or {}, test_cfg or {}
        self.backbone = MODELS.build(generator)
        if not isinstance(critic_steps, int) or critic_steps < 1:
            raise ValueError(f'critic_steps must be an int >= 1, got {critic_steps!r}')
        if rep_loss not in ('frobenius', 'l1'):
            raise ValueError(f"rep_loss must be 'frobenius' or 'l1', got {rep_loss!r}")
        if not 0 <= root_index < num_keypoints:
            raise ValueError(f'root_index={root_index} out of range for {num_keypoints} joints')
        if keypoint_indices is not None:
            keypoint_indices = [int(i) for i in keypoint_indices]
            if len(keypoint_indices) != num_keypoints or min(keypoint_indices) < 0:
                raise ValueError(f'keypoint_indices must list {num_keypoints} non-negative '
                                 f'joint indices, got {keypoint_indices}')
        self.num_keypoints, self.keypoint_indices = num_keypoints, keypoint_indices
        self.root_index, self.critic_steps, self.rep_loss = root_index, critic_steps, rep_loss
        self.adv_weight, self.rep_weight = float(adv_weight), float(rep_weight)
        self.cam_weight, self.gp_weight = float(cam_weight), float(gp_weight)
        self.critic = MODELS.build(critic)
        self.pool = None
        if pose3d_pool is not None:
            pool_cfg = dict(pose3d_pool)
            pool_cfg.setdefault('keypoint_indices', keypoint_indices)
            pool_cfg.setdefault('root_index', root_index)
            self.pool = MODELS.build(pool_cfg)
            if self.pool.num_keypoints != num_keypoints:
                raise ValueError(f'the 3D pose pool has {self.pool.num_keypoints} joints, the '
                                 f'model {num_keypoints}; set keypoint_indices')
        elif self.adv_weight > 0:
            raise ValueError('adv_weight > 0 needs pose3d_pool: the critic learns from '
                             'unpaired real 3D poses')

    @property
    def generator(self) -> RepNetGenerator:
        return self.backbone

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
        return self.lift(self._to_2d(inputs))

    def _forward(self, inputs: Tensor, data_samples=None) -> Tuple[Tensor, Tensor]:
        return self.extract_feat(inputs)

    # -- losses -----------------------------------------------------------------
    def critic_losses(self, real: Tensor, fake: Tensor) -> Dict[str, Tensor]:
        """Critic's WGAN-GP losses: E[D(fake)] - E[D(real)] and the gradient penalty."""
        d_real, d_fake = self.critic(real), self.critic(fake.detach())
        return dict(loss_critic=d_fake.mean() - d_real.mean(),
                    loss_gp=gradient_penalty(self.critic, real, fake, self.gp_weight))

    def generator_losses(self, w: Tensor, x: Tensor, k: Tensor) -> Dict[str, Tensor]:
        losses = dict(loss_rep=self.rep_weight * reprojection_loss(w, k, x, self.rep_loss),
                      loss_cam=self.cam_weight * camera_loss(k))
        if self.adv_weight > 0:
            losses['loss_adv'] = -self.adv_weight * self.critic(x).mean()
        return losses

    def loss(self, inputs: Tensor, data_samples=None) -> Dict[str, Tensor]:
        """Generator losses (and, with a critic, the critic's) for one batch; no update."""
        w = self._to_2d(inputs)
        x, k = self.lift(w)
        losses = self.generator_losses(w, x, k)
        if self.adv_weight > 0:
            losses.update(self.critic_losses(self.pool.sample(len(w)), x))
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
                    losses = self.critic_losses(self.pool.sample(len(w)), fake)
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

    # -- prediction --------------------------------------------------------------
    def predict(self, inputs: Tensor, data_samples) -> list:
        """3D poses in the camera frame (+ ground-truth root, as MMPose's lifters)."""
        x, k = self.extract_feat(inputs)
        x_cam = (x @ camera_rotation(k).transpose(1, 2)).detach().cpu().numpy()
        preds = []
        for pose, sample in zip(x_cam, data_samples):
            root = sample.metainfo.get('target_root', None)
            if root is not None:
                pose = pose + np.asarray(root, np.float32).reshape(1, 3)
            preds.append(InstanceData(keypoints=pose[None],
                                      keypoint_scores=np.ones((1, len(pose)), np.float32)))
            gt = getattr(sample, 'gt_instances', None)
            if self.keypoint_indices is not None and gt is not None and \
                    'lifting_target' in gt and gt.lifting_target.shape[-2] != self.num_keypoints:
                # evaluate on the joints the model predicts
                gt.lifting_target = gt.lifting_target[..., self.keypoint_indices, :]
                gt.lifting_target_visible = gt.lifting_target_visible[
                    ..., self.keypoint_indices]
        return self.add_pred_to_datasample(preds, None, None, None, data_samples)


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
