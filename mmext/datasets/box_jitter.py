"""``JitterBoxes``: deliberately noisy box labels, to study detectors under annotation noise.

Used by ``benchmarks/gaussian_yolo.py`` (Gaussian YOLOv3, Choi et al., ICCV 2019,
arXiv:1904.04620, models localization uncertainty; noisy ground truth is where it should help).
"""
import zlib

import numpy as np
from mmcv.transforms import BaseTransform

from ..registry import TRANSFORMS


@TRANSFORMS.register_module()
class JitterBoxes(BaseTransform):
    """Move every edge of every ground truth box by Gaussian noise proportional to its size.

    x1, x2 move by N(0, (ratio * w)^2) and y1, y2 by N(0, (ratio * h)^2); the result is clipped
    to the image and kept at least ``min_size`` pixels wide and high. Put it right after
    ``LoadAnnotations`` (noise in original pixels, before any resizing or cropping).

    Args:
        ratio (float): noise std as a fraction of the box's width / height, >= 0. Default 0.1.
        fixed (bool): True (default): the same noise for an annotation every epoch, drawn from
            ``seed``, the image path and the box's index, as real label noise is; False: fresh
            noise at every call (an augmentation, not label noise).
        seed (int): seed of the fixed noise. Default 0.
        min_size (float): smallest width / height after jitter, pixels. Default 1.

    Required keys: ``gt_bboxes``, ``img_shape`` (and ``img_path`` when ``fixed``).
    Modified keys: ``gt_bboxes``.
    """

    def __init__(self, ratio: float = 0.1, fixed: bool = True, seed: int = 0,
                 min_size: float = 1.0) -> None:
        if ratio < 0:
            raise ValueError(f'JitterBoxes: ratio={ratio} must be >= 0')
        self.ratio = ratio
        self.fixed = fixed
        self.seed = seed
        self.min_size = min_size
        self._rng = np.random.default_rng(seed)

    def transform(self, results: dict) -> dict:
        boxes = results['gt_bboxes']
        tensor = boxes.tensor if hasattr(boxes, 'tensor') else boxes
        if len(tensor) == 0 or self.ratio == 0:
            return results
        arr = np.asarray(tensor, dtype=np.float64).copy()
        if self.fixed:
            key = zlib.crc32(str(results.get('img_path', results.get('img_id'))).encode())
            rng = np.random.default_rng([self.seed, key])
        else:
            rng = self._rng
        size = np.concatenate([arr[:, 2:] - arr[:, :2]] * 2, axis=1)  # w, h, w, h
        arr += rng.standard_normal(arr.shape) * self.ratio * size
        h, w = results['img_shape'][:2]
        arr[:, 0::2] = arr[:, 0::2].clip(0, w)
        arr[:, 1::2] = arr[:, 1::2].clip(0, h)
        x1, x2 = np.minimum(arr[:, 0], arr[:, 2]), np.maximum(arr[:, 0], arr[:, 2])
        y1, y2 = np.minimum(arr[:, 1], arr[:, 3]), np.maximum(arr[:, 1], arr[:, 3])
        # keep every box (labels stay aligned): widen degenerate ones to min_size
        x2 = np.maximum(x2, x1 + self.min_size)
        y2 = np.maximum(y2, y1 + self.min_size)
        new = np.stack([x1, y1, x2, y2], axis=1)
        if hasattr(boxes, 'tensor'):
            results['gt_bboxes'] = type(boxes)(new.astype(np.float32))
        else:
            results['gt_bboxes'] = new.astype(tensor.dtype)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ratio={self.ratio}, fixed={self.fixed}, '
                f'seed={self.seed}, min_size={self.min_size})')
