"""Kinematic Chain Space (KCS) of a skeleton, and Human3.6M skeletons with 17 and 16 joints.

Wandt & Rosenhahn, "RepNet: Weakly Supervised Training of an Adversarial Reprojection Network
for 3D Human Pose Estimation", CVPR 2019 (arXiv:1902.09868), Sec. 3.2: for a pose
X in R^{3 x J} and a bone matrix C in R^{J x B} (one column per bone, +1 at the child joint,
-1 at the parent joint) the bone vectors are B = X C and the KCS matrix is Psi = B^T B: its
diagonal holds the squared bone lengths, its off-diagonal entries the (length-weighted) angles
between bones. The critic of RepNet looks at Psi so that bone-length symmetry and joint-angle
plausibility become easy features for it.

Tensors here hold poses as (N, J, 3) (MMPose's keypoint layout); the paper's X is the
transpose of one of them.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor

# Human3.6M joint order as in MMPose's ``configs/_base_/datasets/h36m.py``.
H36M_17_JOINTS = ('root', 'right_hip', 'right_knee', 'right_foot', 'left_hip', 'left_knee',
                  'left_foot', 'spine', 'thorax', 'neck_base', 'head', 'left_shoulder',
                  'left_elbow', 'left_wrist', 'right_shoulder', 'right_elbow', 'right_wrist')
H36M_17_EDGES = ((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9),
                 (9, 10), (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16))
# 16 joints: the 17 without ``neck_base`` (index 9); the skeleton then joins thorax and head.
# (RepNet's official code uses a different 16: the 17 without ``spine``, see OFFICIAL_16_JOINTS.)
H36M_16_FROM_17 = tuple(i for i in range(17) if i != 9)
H36M_16_EDGES = ((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9),
                 (8, 10), (10, 11), (11, 12), (8, 13), (13, 14), (14, 15))
# (left bone, right bone) pairs by joint names, for the bone-symmetry error.
SYMMETRIC_BONES_BY_NAME = (
    (('root', 'left_hip'), ('root', 'right_hip')),
    (('left_hip', 'left_knee'), ('right_hip', 'right_knee')),
    (('left_knee', 'left_foot'), ('right_knee', 'right_foot')),
    (('thorax', 'left_shoulder'), ('thorax', 'right_shoulder')),
    (('left_shoulder', 'left_elbow'), ('right_shoulder', 'right_elbow')),
    (('left_elbow', 'left_wrist'), ('right_elbow', 'right_wrist')),
)


# RepNet's official joint order (bastianwandt/RepNet): ``eval_h36m.py`` reorders the MPII-order
# Stacked-Hourglass detections (r_ankle, r_knee, r_hip, l_hip, l_knee, l_ankle, pelvis, thorax,
# upper_neck, head_top, r_wrist, r_elbow, r_shoulder, l_shoulder, l_elbow, l_wrist) by
# ``[2, 1, 0, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 12, 11, 10]``; named here with MMPose's Human3.6M
# names (pelvis = root, upper neck = neck_base, head top = head). Human3.6M's ``spine`` is absent.
OFFICIAL_16_JOINTS = ('right_hip', 'right_knee', 'right_foot', 'left_hip', 'left_knee',
                      'left_foot', 'root', 'thorax', 'neck_base', 'head', 'left_shoulder',
                      'left_elbow', 'left_wrist', 'right_shoulder', 'right_elbow', 'right_wrist')
H36M_16_OFFICIAL_FROM_17 = tuple(H36M_17_JOINTS.index(n) for n in OFFICIAL_16_JOINTS)
# The columns of the official KCS matrix (``train_repnet.py``, ``kcs_layer``, the ``Ct`` constant
# after commit 231a3bc "fixed KCS matrix"): column b is +1 at joint a and -1 at joint c for
# (a, c) below, in OFFICIAL_16_JOINTS order. It differs from the drawn skeleton
# (``plot17j.py``): the left hip hangs on the right hip (0, 3), not on the pelvis (3, 6).
OFFICIAL_KCS_COLUMNS = ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 10),
                        (10, 11), (11, 12), (7, 13), (13, 14), (14, 15), (0, 3), (0, 6))


def official_bone_matrix(joint_names: Sequence[str]) -> Tensor:
    """The official code's KCS matrix C (J x 15) for a layout given by its joint names.

    Rows follow ``joint_names``; a joint the official layout lacks (Human3.6M's ``spine``)
    gets a zero row. The layout must hold all 16 official joints (e.g. Human3.6M's 17, or
    its 17 without ``spine``: ``H36M_16_OFFICIAL_FROM_17``).
    """
    names = list(joint_names)
    missing = [n for n in OFFICIAL_16_JOINTS if n not in names]
    if missing:
        raise ValueError(f'the official RepNet KCS matrix needs the joints {missing}, which '
                         f'this layout ({len(names)} joints) lacks; use the 17-joint layout '
                         'or H36M_16_OFFICIAL_FROM_17')
    c = torch.zeros(len(names), len(OFFICIAL_KCS_COLUMNS))
    for b, (a, d) in enumerate(OFFICIAL_KCS_COLUMNS):
        c[names.index(OFFICIAL_16_JOINTS[a]), b] = 1.0
        c[names.index(OFFICIAL_16_JOINTS[d]), b] = -1.0
    return c


def h36m_skeleton(num_keypoints: int) -> Tuple[Tuple[int, int], ...]:
    """Edges (parent, child) of the Human3.6M skeleton with 17 or 16 joints."""
    if num_keypoints == 17:
        return H36M_17_EDGES
    if num_keypoints == 16:
        return H36M_16_EDGES
    raise ValueError(f'Human3.6M skeletons have 17 or 16 joints, got num_keypoints={num_keypoints}')


def h36m_joint_names(num_keypoints: int) -> Tuple[str, ...]:
    h36m_skeleton(num_keypoints)  # validates
    if num_keypoints == 17:
        return H36M_17_JOINTS
    return tuple(H36M_17_JOINTS[i] for i in H36M_16_FROM_17)


def symmetric_bone_pairs(num_keypoints: int) -> Tuple[Tuple[Tuple[int, int], Tuple[int, int]], ...]:
    """Left/right bone pairs as joint-index pairs of the 17- or 16-joint Human3.6M skeleton."""
    idx = {n: i for i, n in enumerate(h36m_joint_names(num_keypoints))}
    return tuple(((idx[a[0]], idx[a[1]]), (idx[b[0]], idx[b[1]]))
                 for a, b in SYMMETRIC_BONES_BY_NAME)


def check_edges(edges: Sequence[Sequence[int]], num_joints: int) -> Tuple[Tuple[int, int], ...]:
    """Validate a skeleton: pairs of distinct joint indices in ``[0, num_joints)``."""
    if not isinstance(num_joints, int) or num_joints < 2:
        raise ValueError(f'num_joints must be an int >= 2, got {num_joints!r}')
    if len(edges) == 0:
        raise ValueError('a skeleton needs at least one edge, got none')
    out = []
    for e in edges:
        if len(e) != 2:
            raise ValueError(f'skeleton edge {tuple(e)!r} is not a (parent, child) pair')
        p, c = int(e[0]), int(e[1])
        if not (0 <= p < num_joints and 0 <= c < num_joints):
            raise ValueError(f'skeleton edge {(p, c)} is out of range: joint indices must lie '
                             f'in [0, {num_joints - 1}] for {num_joints} joints')
        if p == c:
            raise ValueError(f'skeleton edge {(p, c)} joins a joint to itself')
        out.append((p, c))
    return tuple(out)


def bone_matrix(edges: Sequence[Sequence[int]], num_joints: int) -> Tensor:
    """The paper's C in R^{J x B}: column b has -1 at edge b's parent and +1 at its child."""
    edges = check_edges(edges, num_joints)
    c = torch.zeros(num_joints, len(edges))
    for b, (p, ch) in enumerate(edges):
        c[p, b] = -1.0
        c[ch, b] = 1.0
    return c


def bone_vectors(poses: Tensor, c: Tensor) -> Tensor:
    """B = X C for a batch: poses (N, J, 3) -> bones (N, 3, B)."""
    if poses.dim() != 3 or poses.shape[-1] != 3:
        raise ValueError(f'poses must be (N, J, 3), got shape {tuple(poses.shape)}')
    if poses.shape[1] != c.shape[0]:
        raise ValueError(f'poses have {poses.shape[1]} joints, the bone matrix expects '
                         f'{c.shape[0]}')
    return poses.transpose(1, 2) @ c.to(poses)


def kcs_matrix(poses: Tensor, c: Tensor) -> Tensor:
    """Psi = B^T B for a batch: poses (N, J, 3) -> (N, B, B)."""
    b = bone_vectors(poses, c)
    return b.transpose(1, 2) @ b


def bone_lengths(poses: Tensor, edges: Sequence[Sequence[int]]) -> Tensor:
    """Lengths (N, B) of the given bones."""
    idx = torch.as_tensor(edges, dtype=torch.long, device=poses.device)
    return (poses[:, idx[:, 1]] - poses[:, idx[:, 0]]).norm(dim=-1)
