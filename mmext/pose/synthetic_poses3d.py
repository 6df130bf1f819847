"""Deterministic synthetic 3D human poses in Human3.6M's joint order, seen by random cameras.

For RepNet (Wandt & Rosenhahn, CVPR 2019, arXiv:1902.09868) without Human3.6M on disk: a
kinematic skeleton (17 joints, Human3.6M order, bone lengths of an adult in metres, scaled per
subject) is posed by forward kinematics from joint angles drawn inside anatomical limits
(hip, knee, spine, neck, shoulder, elbow), turned to a random heading, and projected by a
random pinhole camera (distance 4-6 m, elevation -5..25 deg, focal 900-1200 px, 1000x1000
image). Four activities shape the angle distributions (standing, walking, sitting, reaching)
so that joint angles are correlated the way a critic can learn.

Files are written in the layout MMPose's ``Human36mDataset`` reads (``imgname``, ``S`` =
camera-frame 3D joints in metres + visibility, ``part`` = 2D pixels + visibility), so the
synthetic set goes through MMPose's own dataset class and codecs:

* ``train.npz``: 2D inputs for training (its 3D is never shown to RepNet's losses);
* ``val.npz``: evaluation (paired 2D/3D, for MPJPE / PA-MPJPE);
* ``pool.npz``: the *unpaired* 3D poses the critic sees -- other subjects, other poses, drawn
  from an independent random stream, so no pool pose is the 3D of a training 2D pose.

Same seed -> same arrays. 16 joints: :data:`mmext.pose.kcs.H36M_16_FROM_17` selects them.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np

from .kcs import H36M_16_FROM_17

DATA_ROOT = 'data/synthetic_poses3d/'
# split -> (number of poses, seed offset, subject ids)
SPLITS: Dict[str, tuple] = {
    'train': (20000, 0, (1, 5, 6, 7, 8)),
    'val': (2000, 1, (9, 11)),
    'pool': (20000, 2, (2, 3, 4)),
}
ACTIVITIES = ('Standing', 'Walking', 'Sitting', 'Reaching')
IMAGE_SIZE = 1000

# bone lengths in metres (adult, roughly Human3.6M's S1..S11 average)
BONES = dict(hip=0.13, thigh=0.45, shin=0.44, lower_spine=0.23, upper_spine=0.25, neck=0.10,
             head=0.12, clavicle=0.15, upper_arm=0.28, forearm=0.25)

# joint-angle limits in degrees: (low, high, typical standing value)
LIMITS = dict(
    spine_flex=(-15, 45, 5), spine_lat=(-20, 20, 0), spine_twist=(-30, 30, 0),
    chest_flex=(-10, 25, 0), neck_flex=(-40, 50, 5), neck_rot=(-60, 60, 0),
    neck_lat=(-30, 30, 0), hip_flex=(-20, 120, 5), hip_abd=(-15, 45, 5), hip_rot=(-30, 30, 0),
    knee=(0, 150, 5), shoulder_flex=(-40, 170, 5), shoulder_abd=(0, 150, 10),
    shoulder_rot=(-60, 60, 0), elbow=(0, 145, 15),
)


def _rot(axis: str, deg: np.ndarray) -> np.ndarray:
    """Batched rotation matrices (N, 3, 3) about a coordinate axis."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    if axis == 'x':
        m = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == 'y':
        m = [[c, z, s], [z, o, z], [-s, z, c]]
    else:
        m = [[c, -s, z], [s, c, z], [z, z, o]]
    return np.stack([np.stack(r, -1) for r in m], -2)


def _apply(r: np.ndarray, v) -> np.ndarray:
    return np.einsum('nij,nj->ni', r, np.broadcast_to(np.asarray(v, float), r.shape[:2]))


def _sample_angles(rng: np.random.Generator, activity: np.ndarray) -> Dict[str, np.ndarray]:
    """Angles per joint: mostly near the activity's typical value, sometimes anywhere in range."""
    n = len(activity)
    out = {}
    for name, (lo, hi, typ) in LIMITS.items():
        # limbs: row 0 = left, row 1 = right, drawn independently
        shape = (2, n) if name.startswith(('hip', 'knee', 'shoulder', 'elbow')) else (n, )
        a = typ + rng.normal(0, (hi - lo) / 6, shape)
        out[name] = np.where(rng.random(shape) < 0.25, rng.uniform(lo, hi, shape), a)
    walk, sit, reach = activity == 1, activity == 2, activity == 3
    # walking: legs swing in opposite phase, arms counter-swing, knees bend with the swing
    phase = rng.uniform(-1, 1, n)
    out['hip_flex'][:, walk] = np.stack([30 * phase, -30 * phase])[:, walk] + \
        rng.normal(0, 5, (2, walk.sum()))
    out['knee'][:, walk] = np.abs(out['hip_flex'][:, walk]) * 1.5 + rng.uniform(0, 20, walk.sum())
    out['shoulder_flex'][:, walk] = np.stack([-25 * phase, 25 * phase])[:, walk]
    # sitting: hips and knees near 90 degrees
    out['hip_flex'][:, sit] = rng.uniform(70, 105, (2, sit.sum()))
    out['knee'][:, sit] = rng.uniform(70, 115, (2, sit.sum()))
    # reaching: one or both arms raised forward/up
    out['shoulder_flex'][0, reach] = rng.uniform(60, 170, reach.sum())
    both = reach & (rng.random(n) < 0.5)
    out['shoulder_flex'][1, both] = rng.uniform(60, 170, both.sum())
    for name, (lo, hi, _) in LIMITS.items():
        out[name] = np.clip(out[name], lo, hi)
    return out


def sample_poses(num: int, seed: int = 0, num_keypoints: int = 17,
                 return_meta: bool = False):
    """3D poses (num, J, 3) in a y-up body-centred world frame (metres), root at the origin.

    Args:
        num: number of poses.
        seed: random seed (same seed, same poses).
        num_keypoints: 17 (Human3.6M) or 16 (without ``neck_base``).
        return_meta: also return ``dict(activity=..., subject_scale=...)``.
    """
    if num_keypoints not in (16, 17):
        raise ValueError(f'num_keypoints must be 16 or 17 (Human3.6M order), got {num_keypoints}')
    if num < 1:
        raise ValueError(f'num must be >= 1, got {num}')
    rng = np.random.default_rng(seed)
    activity = rng.integers(0, len(ACTIVITIES), num)
    ang = _sample_angles(rng, activity)
    scale = rng.uniform(0.88, 1.12, num)[:, None]
    L = {k: v * scale[:, 0] * rng.uniform(0.97, 1.03, num) for k, v in BONES.items()}
    yaw = rng.uniform(-180, 180, num)
    r_root = _rot('y', yaw) @ _rot('x', rng.normal(0, 4, num)) @ _rot('z', rng.normal(0, 4, num))

    j = np.zeros((num, 17, 3))
    r_spine = (r_root @ _rot('x', ang['spine_flex']) @ _rot('z', ang['spine_lat'])
               @ _rot('y', ang['spine_twist']))
    j[:, 7] = _apply(r_spine, [0, 1, 0]) * L['lower_spine'][:, None]
    r_chest = r_spine @ _rot('x', ang['chest_flex'])
    j[:, 8] = j[:, 7] + _apply(r_chest, [0, 1, 0]) * L['upper_spine'][:, None]
    r_neck = (r_chest @ _rot('x', ang['neck_flex']) @ _rot('y', ang['neck_rot'])
              @ _rot('z', ang['neck_lat']))
    j[:, 9] = j[:, 8] + _apply(r_neck, [0, 1, 0.25]) * L['neck'][:, None]
    j[:, 10] = j[:, 9] + _apply(r_neck, [0, 1, 0]) * L['head'][:, None]
    # limbs: index 0 = left (+x in the body frame), 1 = right
    for side, sign, (hip, knee, foot), (sh, el, wr) in (
            (0, 1.0, (4, 5, 6), (11, 12, 13)), (1, -1.0, (1, 2, 3), (14, 15, 16))):
        j[:, hip] = _apply(r_root, [sign, -0.15, 0]) * L['hip'][:, None]
        r_leg = (r_root @ _rot('z', sign * ang['hip_abd'][side])
                 @ _rot('x', -ang['hip_flex'][side]) @ _rot('y', sign * ang['hip_rot'][side]))
        j[:, knee] = j[:, hip] + _apply(r_leg, [0, -1, 0]) * L['thigh'][:, None]
        r_shin = r_leg @ _rot('x', ang['knee'][side])
        j[:, foot] = j[:, knee] + _apply(r_shin, [0, -1, 0]) * L['shin'][:, None]
        j[:, sh] = j[:, 8] + _apply(r_chest, [sign, -0.12, 0]) * L['clavicle'][:, None]
        r_arm = (r_chest @ _rot('z', sign * ang['shoulder_abd'][side])
                 @ _rot('x', -ang['shoulder_flex'][side])
                 @ _rot('y', sign * ang['shoulder_rot'][side]))
        j[:, el] = j[:, sh] + _apply(r_arm, [0, -1, 0]) * L['upper_arm'][:, None]
        r_fore = r_arm @ _rot('x', -ang['elbow'][side])
        j[:, wr] = j[:, el] + _apply(r_fore, [0, -1, 0]) * L['forearm'][:, None]
    if num_keypoints == 16:
        j = j[:, list(H36M_16_FROM_17)]
    if return_meta:
        return j, dict(activity=activity, subject_scale=scale[:, 0])
    return j


def random_cameras(num: int, seed: int = 0) -> Dict[str, np.ndarray]:
    """Random pinhole cameras looking at the root: rotation (N,3,3), translation (N,3), f, c."""
    rng = np.random.default_rng(seed)
    # world y-up -> camera y-down, then tilt the camera down by its elevation
    flip = np.diag([1.0, -1.0, 1.0])
    rot = _rot('x', -rng.uniform(-5, 25, num)) @ flip
    t = np.stack([rng.uniform(-0.3, 0.3, num), rng.uniform(-0.3, 0.3, num),
                  rng.uniform(4.0, 6.0, num)], -1)
    f = rng.uniform(900, 1200, num)
    c = np.full((num, 2), IMAGE_SIZE / 2)
    return dict(R=rot, T=t, f=f, c=c)


def project(poses_world: np.ndarray, cams: Dict[str, np.ndarray]):
    """World poses -> (camera-frame 3D (N,J,3), pixel 2D (N,J,2)) by perspective projection."""
    cam = np.einsum('nij,nkj->nki', cams['R'], poses_world) + cams['T'][:, None]
    if (cam[..., 2] <= 0.1).any():
        raise ValueError('a joint lies behind the camera; camera distance too small')
    uv = cams['f'][:, None, None] * cam[..., :2] / cam[..., 2:] + cams['c'][:, None]
    return cam, uv


def make_split(split: str, seed: int = 0, num: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Arrays of one split in MMPose's Human3.6M annotation layout."""
    if split not in SPLITS:
        raise ValueError(f'split={split!r} is not one of {tuple(SPLITS)}')
    n_default, offset, subjects = SPLITS[split]
    num = num or n_default
    base = 1000 * seed + 100 * offset
    poses, meta = sample_poses(num, seed=base + 1, return_meta=True)
    cams = random_cameras(num, seed=base + 2)
    cam3d, uv = project(poses, cams)
    subj = np.asarray(subjects)[np.arange(num) % len(subjects)]
    names = np.array([f'S{s}_{ACTIVITIES[a]}.cam{i % 4 + 1}_{i:06d}.jpg'
                      for i, (s, a) in enumerate(zip(subj, meta['activity']))])
    ones = np.ones((num, 17, 1), np.float32)
    return dict(
        imgname=names,
        S=np.concatenate([cam3d, ones], -1).astype(np.float32),
        part=np.concatenate([uv, ones], -1).astype(np.float32),
        center=np.full((num, 2), IMAGE_SIZE / 2, np.float32),
        scale=np.ones(num, np.float32),
        world=poses.astype(np.float32))


def ensure_generated(data_root: str = DATA_ROOT, splits: Sequence[str] = tuple(SPLITS),
                     seed: int = 0) -> Dict[str, str]:
    """Write ``<data_root>/<split>.npz`` for the splits that are missing; return their paths."""
    paths = {}
    for split in splits:
        path = osp.join(data_root, f'{split}.npz')
        paths[split] = path
        if osp.exists(path):
            continue
        os.makedirs(data_root, exist_ok=True)
        arrays = make_split(split, seed)
        tmp = path + f'.tmp{os.getpid()}.npz'
        np.savez(tmp, **arrays)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return paths


def _register_dataset():
    # imported here so that the generator functions above need numpy only
    from mmengine.dist import barrier, get_dist_info, is_distributed
    from mmpose.datasets import Human36mDataset
    from mmpose.registry import DATASETS

    @DATASETS.register_module()
    class SyntheticPose3dDataset(Human36mDataset):
        """A split of the synthetic 3D pose set through MMPose's ``Human36mDataset``.

        The files are generated on first use (seconds), so configs name a split, not a path:
        ``dict(type='SyntheticPose3dDataset', split='train', pipeline=...)``.

        Args:
            split: ``'train'``, ``'val'`` or ``'pool'``.
            data_root: where the ``.npz`` files live or are written.
            seed: generator seed (files already present are used as they are).
            **kwargs: everything else ``Human36mDataset`` takes (``seq_len``, ``pipeline``...).
        """

        def __init__(self, split: str = 'train', data_root: str = DATA_ROOT, seed: int = 0,
                     **kwargs):
            if split not in SPLITS:
                raise ValueError(f'SyntheticPose3dDataset: split={split!r} is not one of '
                                 f'{tuple(SPLITS)}')
            if 'ann_file' in kwargs:
                raise TypeError('SyntheticPose3dDataset takes split=, not ann_file=')
            if get_dist_info()[0] == 0:  # one process writes, the others wait
                ensure_generated(data_root, [split], seed)
            if is_distributed():
                barrier()
            self.split = split
            super().__init__(ann_file=f'{split}.npz', data_root=data_root, **kwargs)

    return SyntheticPose3dDataset


SyntheticPose3dDataset = _register_dataset()
