"""Left/right bone-length symmetry error of predicted 3D poses, as an MMPose metric.

RepNet (Wandt & Rosenhahn, CVPR 2019, arXiv:1902.09868) motivates the critic's KCS path by
bone-length symmetry: Psi's diagonal holds squared bone lengths, so a critic that sees Psi can
penalise a left forearm longer than the right. This metric measures it on predictions: for
each left/right bone pair, | |left| - |right| |, averaged over pairs and poses (in the units
of the predictions, metres for Human3.6M), and the same divided by the pair's mean length.
"""
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from mmpose.registry import METRICS

from .kcs import symmetric_bone_pairs


@METRICS.register_module()
class BoneSymmetryError(BaseMetric):
    """Mean |left - right| bone length of ``pred_instances.keypoints``.

    Args:
        num_keypoints: 17 or 16 (Human3.6M order) to use its left/right bone pairs.
        bone_pairs: explicit ``((l_parent, l_child), (r_parent, r_child))`` pairs instead.
        collect_device, prefix: as :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix = ''

    def __init__(self, num_keypoints: int = 17, bone_pairs: Optional[Sequence] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        pairs = symmetric_bone_pairs(num_keypoints) if bone_pairs is None else bone_pairs
        arr = np.asarray(pairs, dtype=np.int64)
        if arr.ndim != 3 or arr.shape[1:] != (2, 2):
            raise ValueError('bone_pairs must be ((l_parent, l_child), (r_parent, r_child)) '
                             f'pairs, got {pairs!r}')
        self.pairs, self.num_keypoints = arr, num_keypoints
        if bone_pairs is not None:
            self.num_keypoints = None

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            kpts = np.asarray(sample['pred_instances']['keypoints'], np.float64)
            kpts = kpts.reshape(-1, *kpts.shape[-2:])
            if kpts.shape[-1] != 3:
                raise ValueError(f'BoneSymmetryError needs 3D keypoints, got {kpts.shape}')
            if self.pairs.max() >= kpts.shape[1]:
                raise ValueError(f'bone pairs reach joint {self.pairs.max()}, predictions have '
                                 f'{kpts.shape[1]} joints')
            self.results.append(bone_symmetry(kpts, self.pairs))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        err = np.concatenate([r[0] for r in results])
        rel = np.concatenate([r[1] for r in results])
        return dict(symmetry_error=float(err.mean()), symmetry_error_rel=float(rel.mean()))


def bone_symmetry(kpts: np.ndarray, pairs: np.ndarray):
    """Per-pose mean |left - right| length and the same relative to the pair's mean length."""
    def length(bones):
        return np.linalg.norm(kpts[:, bones[:, 1]] - kpts[:, bones[:, 0]], axis=-1)
    left, right = length(pairs[:, 0]), length(pairs[:, 1])
    diff = np.abs(left - right)
    rel = diff / np.maximum((left + right) / 2, 1e-9)
    return diff.mean(1), rel.mean(1)
