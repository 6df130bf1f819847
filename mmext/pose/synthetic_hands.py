"""Deterministic synthetic multiview hand data for the hand-keypoint model and multiview
bootstrapping (Simon et al., CVPR 2017, arXiv:1704.07809).

A 21-joint right hand (OneHand10K / COCO-WholeBody-Hand order: wrist, then thumb, fore-, middle,
ring and little finger, four joints each from the base to the tip) is posed at random (finger
flexion and spread, global rotation) and seen by V calibrated pinhole cameras on a ring around
it, like the paper's capture dome. Every view is drawn with the painter's algorithm (far parts
first), so fingers hide each other: a joint's COCO visibility is 2 where the drawing shows it and
1 where a nearer part covers it, read from an ID buffer drawn in the same order. Ground truth is
exact: 3D joints, 2D projections, and the 3x4 camera matrices.

Splits (COCO-keypoint json + PNGs under ``data/synthetic_hands/``):

* ``labelled``  -- single views with labels: what d_0 is trained on ("a few labelled views");
* ``multiview`` -- ``num_frames`` frames x V views; its labels are the exact ground truth (used
  to measure the bootstrapped labels), but bootstrapping uses only the images, the boxes and the
  ``cameras`` block;
* ``val``       -- single views for PCK / AUC / EPE.

Same seed -> byte-identical files (every frame draws from its own generator seeded from
(seed, split, index); JSON written with sorted keys).
"""
import json
import os
import os.path as osp
import zlib
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import barrier, get_dist_info, is_distributed

from mmpose.datasets import OneHand10KDataset
from mmpose.registry import DATASETS

DATA_ROOT = 'data/synthetic_hands/'
NUM_KEYPOINTS = 21
KEYPOINT_NAMES = ['wrist'] + [
    f'{f}{i}' for f in ('thumb', 'forefinger', 'middle_finger', 'ring_finger', 'pinky_finger')
    for i in range(1, 5)]
# bones as (parent, child): wrist -> base of each finger, then along the finger
BONES = [(0, 1 + 4 * f) for f in range(5)] + [(1 + 4 * f + k, 2 + 4 * f + k)
                                              for f in range(5) for k in range(3)]
# finger geometry in metres, hand frame: palm in the x-y plane, fingers along +y, palm faces -z.
# (base x, base y, in-plane direction angle in degrees from +y, phalanx lengths)
FINGERS = (
    (0.022, 0.020, -55.0, (0.040, 0.032, 0.028)),   # thumb: CMC, MCP, IP, tip
    (0.024, 0.090, -6.0, (0.044, 0.026, 0.020)),     # forefinger: MCP, PIP, DIP, tip
    (0.006, 0.094, 0.0, (0.048, 0.030, 0.022)),      # middle
    (-0.012, 0.090, 6.0, (0.045, 0.028, 0.020)),     # ring
    (-0.028, 0.082, 12.0, (0.036, 0.021, 0.018)),    # little
)
FINGER_COLORS = ((60, 140, 255), (80, 220, 80), (255, 120, 60), (220, 60, 220), (60, 220, 230))
SPLITS = dict(labelled=dict(num_frames=48, views='one'),
              multiview=dict(num_frames=48, views='all'),
              val=dict(num_frames=96, views='one'))


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: rotation by ``angle`` radians about unit ``axis``."""
    a = axis / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform random rotation (from a normalised Gaussian quaternion)."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def hand_pose(rng: np.random.Generator) -> np.ndarray:
    """A random right hand: ``(21, 3)`` joints in metres, wrist at the origin (hand frame)."""
    joints = np.zeros((NUM_KEYPOINTS, 3))
    normal = np.array([0.0, 0.0, -1.0])  # fingers flex towards the palm side
    for f, (bx, by, ang, lengths) in enumerate(FINGERS):
        spread = np.deg2rad(ang + rng.uniform(-8, 8))
        direction = np.array([np.sin(-spread), np.cos(spread), 0.0])
        if f == 0:  # the thumb folds across the palm: its flexion axis is tilted
            flex = np.deg2rad(rng.uniform(0, 50, size=3))
            axis = _rot(np.array([0.0, 1.0, 0.0]), np.deg2rad(40)) @ np.cross(direction, normal)
        else:
            flex = np.deg2rad(rng.uniform([0, 0, 0], [85, 100, 70]))
            axis = np.cross(direction, normal)
        base = np.array([bx, by, 0.0])
        joints[1 + 4 * f] = base
        d = direction
        for k, length in enumerate(lengths):
            d = _rot(axis, -flex[k]) @ d
            joints[2 + 4 * f + k] = joints[1 + 4 * f + k] + length * d
    return joints


def camera_ring(num_views: int, rng: np.random.Generator, image_size: int,
                radius: float = 0.45) -> np.ndarray:
    """``(V, 3, 4)`` cameras ``K [R | t]`` on a ring around the origin, looking at it."""
    cams = []
    for v in range(num_views):
        azim = 2 * np.pi * v / num_views + rng.uniform(-0.15, 0.15)
        elev = rng.uniform(-0.5, 0.5)
        C = radius * np.array([np.cos(elev) * np.cos(azim), np.sin(elev),
                               np.cos(elev) * np.sin(azim)])
        z = -C / np.linalg.norm(C)
        x = np.cross([0.0, 1.0, 0.0], z)
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        f = image_size * rng.uniform(1.25, 1.45)
        K = np.array([[f, 0, image_size / 2], [0, f, image_size / 2], [0, 0, 1.0]])
        cams.append(K @ np.hstack([R, (-R @ C)[:, None]]))
    return np.stack(cams)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    low = rng.uniform(30, 200, size=(4, 4, 3)).astype(np.float32)
    img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 8, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


def render_view(joints3d: np.ndarray, P: np.ndarray, image_size: int,
                rng: np.random.Generator) -> tuple:
    """Draw one view. Returns (BGR uint8 image, ``(21, 2)`` keypoints, ``(21,)`` visibility 1|2)."""
    Xh = np.hstack([joints3d, np.ones((len(joints3d), 1))])
    x = Xh @ P.T
    depth = x[:, 2]
    uv = x[:, :2] / depth[:, None]
    focal = np.linalg.norm(P[0, :3])  # |K row 0| ~ f for K [R|t] with zero skew
    img = _background(rng, image_size)
    ids = np.zeros((image_size, image_size), np.int32)
    shift = 4  # cv2 draws with 1/16-pixel precision: keypoints are exact to the drawing
    pt = lambda p: tuple(int(round(c * (1 << shift))) for c in p)  # noqa: E731
    skin = np.array([120, 160, 215.0])
    # primitives: (depth, kind, data); palm first as one polygon
    prims = [(depth[[0, 5, 9, 13, 17]].mean() + 0.01, 'palm', None)]
    for b, (i, j) in enumerate(BONES):
        prims.append((max(depth[i], depth[j]) - 1e-4, 'bone', b))
    for k in range(NUM_KEYPOINTS):
        prims.append((depth[k] - 2e-4, 'joint', k))
    owner = {}  # primitive id -> joints it shows
    for pid, (d, kind, data) in enumerate(sorted(prims, key=lambda p: -p[0]), start=1):
        shade = float(np.clip(1.25 - 2.0 * (d - depth.min()), 0.55, 1.2))
        if kind == 'palm':
            poly = np.array([pt(uv[k]) for k in (0, 1, 5, 9, 13, 17)], np.int32)
            cv2.fillPoly(img, [poly], (skin * shade).tolist(), cv2.LINE_AA, shift)
            cv2.fillPoly(ids, [poly], pid, cv2.LINE_8, shift)
            owner[pid] = (0,)
        elif kind == 'bone':
            i, j = BONES[data]
            finger = (j - 1) // 4
            r = max(1, int(round(0.0085 * focal / ((depth[i] + depth[j]) / 2))))
            color = np.array(FINGER_COLORS[finger]) * 0.5 + skin * 0.5
            cv2.line(img, pt(uv[i]), pt(uv[j]), (color * shade).tolist(), 2 * r, cv2.LINE_AA, shift)
            cv2.line(ids, pt(uv[i]), pt(uv[j]), pid, 2 * r, cv2.LINE_8, shift)
            owner[pid] = (i, j)
        else:
            k = data
            finger = max(0, (k - 1) // 4)
            r = max(1, int(round(0.006 * focal / depth[k])))
            # joints get the finger colour, darker towards the tip, so their order along a
            # finger can be told apart
            step = 0 if k == 0 else (k - 1) % 4
            color = np.array(FINGER_COLORS[finger]) * (1.0 - 0.18 * step)
            cv2.circle(img, pt(uv[k]), r << shift, (color * shade).tolist(), -1, cv2.LINE_AA, shift)
            cv2.circle(ids, pt(uv[k]), r << shift, pid, -1, cv2.LINE_8, shift)
            owner[pid] = (k,)
    px = np.clip(np.round(uv).astype(int), 0, image_size - 1)
    seen = ids[px[:, 1], px[:, 0]]
    vis = np.array([2 if k in owner.get(int(seen[k]), ()) else 1 for k in range(NUM_KEYPOINTS)])
    return img.astype(np.uint8), uv, vis


def _ann(ann_id: int, img_id: int, uv: np.ndarray, vis: np.ndarray) -> dict:
    x0, y0 = uv.min(0)
    x1, y1 = uv.max(0)
    kpts = np.concatenate([uv, vis[:, None]], axis=1)
    return dict(id=ann_id, image_id=img_id, category_id=1, iscrowd=0,
                bbox=[round(float(v), 3) for v in (x0, y0, x1 - x0, y1 - y0)],
                area=round(float((x1 - x0) * (y1 - y0)), 3), num_keypoints=NUM_KEYPOINTS,
                keypoints=[round(float(v), 4) for v in kpts.reshape(-1)])


def _category() -> dict:
    return dict(id=1, name='hand', supercategory='hand', keypoints=KEYPOINT_NAMES,
                skeleton=[[i + 1, j + 1] for i, j in BONES])


def generate_split(data_root: str, split: str, seed: int = 0, num_views: int = 6,
                   image_size: int = 128, num_frames: Optional[int] = None) -> str:
    """Write one split; returns the annotation path.

    Args:
        data_root: output directory.
        split: ``'labelled'``, ``'multiview'`` or ``'val'``.
        seed: generator seed.
        num_views: cameras in the rig (V >= 2).
        image_size: square image side in pixels.
        num_frames: frames (hand poses); default from :data:`SPLITS`.
    """
    if split not in SPLITS:
        raise ValueError(f'synthetic hands: split={split!r} is not one of {tuple(SPLITS)}')
    if num_views < 2:
        raise ValueError(f'synthetic hands: num_views must be >= 2, got {num_views}')
    n = SPLITS[split]['num_frames'] if num_frames is None else num_frames
    cameras = camera_ring(num_views, _rng(seed, 'rig', 0), image_size)
    os.makedirs(osp.join(data_root, split), exist_ok=True)
    os.makedirs(osp.join(data_root, 'annotations'), exist_ok=True)
    images, anns, frames = [], [], []
    for f in range(n):
        rng = _rng(seed, split, f)
        views = (range(num_views) if SPLITS[split]['views'] == 'all'
                 else [int(rng.integers(num_views))])
        for _ in range(100):  # resample until every view sees the whole hand inside the image
            R = random_rotation(rng)
            t = rng.uniform(-0.02, 0.02, size=3)
            joints = hand_pose(rng) - np.array([0, 0.08, 0])  # centre the hand, not the wrist
            X = joints @ R.T + t
            uv = np.stack([(np.hstack([X, np.ones((21, 1))]) @ cameras[v].T) for v in views])
            uv = uv[..., :2] / uv[..., 2:3]
            if (uv > 3).all() and (uv < image_size - 3).all():
                break
        frames.append(dict(id=f, keypoints_3d=[round(float(v), 6) for v in X.reshape(-1)]))
        for v in views:
            img, uv, vis = render_view(X, cameras[v], image_size, rng)
            img_id = len(images)
            name = f'{split}/{f:05d}_v{v}.png'  # relative to data_root: label files can mix splits
            cv2.imwrite(osp.join(data_root, name), img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
            images.append(dict(id=img_id, file_name=name, width=image_size, height=image_size,
                               frame_id=f, view_id=v))
            anns.append(_ann(img_id, img_id, uv, vis))
    coco = dict(images=images, annotations=anns, categories=[_category()], frames=frames,
                cameras={str(v): cameras[v].round(8).tolist() for v in range(num_views)},
                info=dict(description='mmext synthetic multiview hands', seed=seed,
                          num_views=num_views, image_size=image_size))
    path = osp.join(data_root, 'annotations', f'{split}.json')
    with open(path, 'w') as fh:
        json.dump(coco, fh, sort_keys=True)
    return path


def ensure_hands_generated(data_root: str = DATA_ROOT, splits: Sequence[str] = tuple(SPLITS),
                           seed: int = 0, **kwargs) -> Dict[str, str]:
    """Generate the splits whose annotation file is missing; returns split -> annotation path."""
    out = {}
    for split in splits:
        path = osp.join(data_root, 'annotations', f'{split}.json')
        if not osp.exists(path):
            path = generate_split(data_root, split, seed, **kwargs)
        out[split] = path
    return out


def load_multiview(ann_file: str) -> dict:
    """Read a multiview annotation file: cameras ``(V, 3, 4)`` and images grouped by frame.

    Returns:
        dict with ``cameras`` ``(V, 3, 4)``, ``frames`` ``{frame_id: {view_id: image dict}}``,
        ``anns`` ``{image_id: ann}``, ``coco`` the raw json, ``points3d`` ``{frame_id: (21, 3)}``.
    """
    with open(ann_file) as fh:
        coco = json.load(fh)
    if 'cameras' not in coco:
        raise ValueError(f'{ann_file}: no "cameras" block: bootstrapping needs calibrated views')
    cams = np.array([coco['cameras'][k] for k in sorted(coco['cameras'], key=int)], np.float64)
    frames: Dict[int, Dict[int, dict]] = {}
    for img in coco['images']:
        frames.setdefault(img['frame_id'], {})[img['view_id']] = img
    pts = {fr['id']: np.array(fr['keypoints_3d']).reshape(-1, 3) for fr in coco.get('frames', [])}
    return dict(cameras=cams, frames=frames, coco=coco, points3d=pts,
                anns={a['image_id']: a for a in coco['annotations']})


@DATASETS.register_module()
class SyntheticHandDataset(OneHand10KDataset):
    """The synthetic hands as a top-down MMPose dataset (OneHand10K's 21-keypoint metainfo).

    Args:
        split: ``'labelled'``, ``'multiview'`` or ``'val'``; generated on first use.
        data_root: where the set lives (default ``data/synthetic_hands/``).
        seed: generator seed.
        ann_file: another annotation file in the same format (e.g. bootstrapped labels, which
            mix splits: image file names are relative to ``data_root``).
        **kwargs: everything else :class:`mmpose.datasets.BaseCocoStyleDataset` takes.
    """

    def __init__(self, split: str = 'labelled', data_root: str = DATA_ROOT, seed: int = 0,
                 ann_file: str = '', **kwargs):
        if split not in SPLITS:
            raise ValueError(f'SyntheticHandDataset: split={split!r} is not one of {tuple(SPLITS)}')
        if get_dist_info()[0] == 0:
            ensure_hands_generated(data_root, [split], seed)
        if is_distributed():
            barrier()
        ann_file = ann_file or osp.join('annotations', f'{split}.json')
        kwargs.setdefault('data_prefix', dict(img=''))
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)


def split_images(ann_file: str) -> List[str]:
    """Image file names listed in an annotation file (for tools and tests)."""
    with open(ann_file) as fh:
        return [im['file_name'] for im in json.load(fh)['images']]
