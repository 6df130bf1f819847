"""``SNIPERChipCrop``: cut a SNIPER chip out of an image at the chip's scale (arXiv:1805.09300).

The chip (from :class:`mmext.datasets.sniper.SNIPERDataset`, ``results['sniper_chip']``) is a box
in the image scaled by ``scale``. The transform produces exactly that piece of the scaled image
without scaling the whole image up (a 1333 px COCO image at scale 3 would be 4000 px): upscaling
warps only the chip's pixels (``cv2.warpAffine``, half-pixel centres as ``cv2.resize``);
downscaling resizes the whole image (small, and ``INTER_AREA`` avoids aliasing) and crops.

Meta afterwards, as mmdet's ``Resize`` + ``RandomCrop`` would leave it: ``img_shape`` = the
chip's valid size (<= K; the batch padding pads smaller chips), ``scale_factor`` = (s, s),
``ori_shape`` unchanged; boxes (including ignore regions) are scaled, shifted and clipped.
Instance masks go with the chip (the official ``crop_polys`` in
``lib/data_utils/mask_utils.py`` shifts and scales polygons): polygons are scaled and clipped to
the chip exactly (mmdet's ``PolygonMasks.crop``); bitmaps are warped like the image, with
nearest-neighbour sampling.
"""
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ..registry import TRANSFORMS


@TRANSFORMS.register_module()
class SNIPERChipCrop(BaseTransform):
    """Crop and rescale the image, boxes and ignore regions to ``results['sniper_chip']``.

    Required keys: ``img``, ``sniper_chip`` (``dict(box=[x1, y1, x2, y2], scale=s)``, the box in
    scaled pixels). Optional: ``gt_bboxes``, ``gt_masks`` (``BitmapMasks`` or
    ``PolygonMasks``), ``homography_matrix``.
    Modified keys: ``img``, ``img_shape``, ``gt_bboxes``, ``gt_masks``, ``homography_matrix``.
    Added keys: ``scale_factor``, ``keep_ratio``.

    Args:
        interpolation: cv2 interpolation for upscaling (default bilinear).
        pad_val: value of pixels outside the image (chips never leave the image; kept for
            robustness against annotations whose size differs from the file's).
    """

    def __init__(self, interpolation: int = cv2.INTER_LINEAR, pad_val: float = 0):
        self.interpolation = interpolation
        self.pad_val = pad_val

    def _crop(self, img: np.ndarray, box, scale: float,
              interpolation: Optional[int] = None) -> np.ndarray:
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        if scale < 1:
            sw = max(int(round(img.shape[1] * scale)), 1)
            sh = max(int(round(img.shape[0] * scale)), 1)
            small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA
                               if interpolation is None else interpolation)
            out = small[y1:y2, x1:x2]
            if out.shape[:2] != (h, w):  # only if the file is smaller than annotated
                pad = [(0, h - out.shape[0]), (0, w - out.shape[1])] + [(0, 0)] * (img.ndim - 2)
                out = np.pad(out, pad, constant_values=self.pad_val)
            return np.ascontiguousarray(out)
        # dst = s * src + (s - 1) / 2 - offset: cv2.resize's pixel-centre convention
        shift = 0.5 * scale - 0.5
        mat = np.array([[scale, 0, shift - x1], [0, scale, shift - y1]], dtype=np.float64)
        border = self.pad_val if img.ndim == 2 else (self.pad_val, ) * img.shape[2]
        out = cv2.warpAffine(img, mat, (w, h), flags=self.interpolation
                             if interpolation is None else interpolation,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=border)
        if img.ndim == 3 and out.ndim == 2:
            out = out[..., None]
        return out

    def _crop_masks(self, masks, box, scale: float, size):
        from mmdet.structures.mask import BitmapMasks, PolygonMasks
        h, w = size
        if isinstance(masks, PolygonMasks):
            sw = max(int(round(masks.width * scale)), 1)
            sh = max(int(round(masks.height * scale)), 1)
            polys = [[np.asarray(p, dtype=np.float64) * scale for p in obj]
                     for obj in masks.masks]
            out = PolygonMasks(polys, sh, sw).crop(np.asarray(box, dtype=np.float64))
            return PolygonMasks(out.masks, h, w)
        if isinstance(masks, BitmapMasks):
            dtype = masks.masks.dtype  # cv2 takes uint8, not bool
            arr = [self._crop(m.astype(np.uint8), box, scale, cv2.INTER_NEAREST).astype(dtype)
                   for m in masks.masks]
            arr = np.stack(arr) if arr else np.zeros((0, h, w), dtype=dtype)
            return BitmapMasks(arr, h, w)
        raise TypeError(f'SNIPERChipCrop: gt_masks of type {type(masks).__name__}; expected '
                        'BitmapMasks or PolygonMasks')

    def transform(self, results: dict) -> Optional[dict]:
        if 'sniper_chip' not in results:
            raise KeyError('SNIPERChipCrop needs results["sniper_chip"]: wrap the dataset in '
                           "dict(type='SNIPERDataset', dataset=...)")
        chip = results['sniper_chip']
        box = [int(v) for v in chip['box']]
        scale = float(chip['scale'])
        if not scale > 0 or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f'SNIPERChipCrop: bad chip box={box}, scale={scale}')
        img = self._crop(results['img'], box, scale)
        h, w = img.shape[:2]
        results['img'] = img
        results['img_shape'] = (h, w)
        results['scale_factor'] = (scale, scale)
        results['keep_ratio'] = True
        if results.get('gt_bboxes') is not None:
            boxes = results['gt_bboxes']
            boxes.rescale_((scale, scale))
            boxes.translate_((-box[0], -box[1]))
            boxes.clip_((h, w))
        if results.get('gt_masks') is not None:
            results['gt_masks'] = self._crop_masks(results['gt_masks'], box, scale, (h, w))
        if results.get('homography_matrix') is not None:
            mat = np.array([[scale, 0, -box[0]], [0, scale, -box[1]], [0, 0, 1]],
                           dtype=np.float32)
            results['homography_matrix'] = mat @ results['homography_matrix']
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(interpolation={self.interpolation})'
