"""SNIPER inference on images larger than a detector can take at once: tiles on the chip grid.

Beyond the paper. SNIPER's test (``sniper_inference``) runs the whole image at every scale --
fine for COCO, impossible for a 6000 x 4000 aerial or document image at 3x. Here, per scale,
the scaled image is covered by overlapping K x K tiles on the training chip grid
(:func:`mmext.datasets.sniper.chip_starts`: a ``stride`` grid, the last row/column moved to end
at the border); the detector runs on batches of tiles (each tile cut and scaled straight from the
original image, as :class:`~mmext.datasets.sniper_transforms.SNIPERChipCrop` does -- the scaled
image is never built); boxes are shifted back to original pixels; a box that touches a tile
border inside the image (within ``border_delta`` tile pixels) is dropped, since the tile cut it
and a neighbouring tile holds it whole (the official ``check_valid`` of ``get_detections`` in
mahyarnajibi/SNIPER ``lib/inference.py``, ``delta=10``); then each scale's test range is kept and
all tiles and scales are merged with soft-NMS (:func:`merge_scale_detections`, as the
multi-scale test).

The default ``stride`` is chosen per scale so that tiles overlap by the largest box of the
scale's test range plus ``2 * border_delta``: every such box then lies inside some tile away from
its borders.

Two entry points: :func:`sniper_tiled_inference` (one image, array or path) and
``test_cfg = dict(type='SNIPERTiledTestLoop', ...)`` for ``tools/test.py`` (the test pipeline
loads the image at its original size: no ``Resize``). Detectors that need special test-time meta
(CenterNet's ``border`` from ``RandomCenterCropPad``) are not supported; instance masks are not
pasted back (boxes only).
"""
import copy
import math
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmdet.registry import LOOPS
from mmdet.structures import DetDataSample
from mmengine.runner import TestLoop
from mmengine.structures import InstanceData

from mmext.datasets.sniper import Scale, chip_starts, resolve_scale, scaled_size
from mmext.datasets.sniper_transforms import SNIPERChipCrop
from .sniper_inference import (SNIPER_COCO_TEST, _check_ranges, merge_scale_detections,
                               per_scale_post_processing)

SNIPER_COCO_TILED = dict(scales=(3.0, 1.667, 'fit'), chip_size=512, border_delta=10,
                         **SNIPER_COCO_TEST)


def tile_grid(width: int, height: int, chip_size: int, stride: int) -> np.ndarray:
    """(T, 4) int x1y1x2y2 tiles covering a ``width`` x ``height`` (scaled) image."""
    xs = chip_starts(width, chip_size, stride)
    ys = chip_starts(height, chip_size, stride)
    x, y = np.meshgrid(xs, ys)
    x, y = x.ravel(), y.ravel()
    return np.stack([x, y, np.minimum(x + chip_size, width), np.minimum(y + chip_size, height)],
                    1).astype(np.int64)


def default_stride(chip_size: int, scale: float, test_range: Sequence[float], width: int,
                   height: int, border_delta: float) -> int:
    """The largest stride whose tiles overlap by the scale's largest test box + 2 * delta."""
    hi = min(float(test_range[1]), float(max(width, height)))
    overlap = math.ceil(hi * scale + 2 * border_delta)
    return int(max(16, chip_size - overlap))


def cut_by_tile(boxes: torch.Tensor, tile: Sequence[int], width: int, height: int,
                delta: float) -> torch.Tensor:
    """(N,) bool: box (tile pixels) within ``delta`` of a tile side that is not the image's.

    Official ``check_valid`` (``lib/inference.py``): a detection whose left, top, right or bottom
    side is closer than ``delta`` to the chip's, where the chip side is inside the image.
    """
    x1, y1, x2, y2 = (int(v) for v in tile)
    tw, th = x2 - x1, y2 - y1
    cut = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    if x1 > 0:
        cut |= boxes[:, 0] < delta
    if y1 > 0:
        cut |= boxes[:, 1] < delta
    if x2 < width:
        cut |= boxes[:, 2] > tw - delta
    if y2 < height:
        cut |= boxes[:, 3] > th - delta
    return cut


def _tile_sample(tile_img: np.ndarray, meta: Optional[dict]) -> tuple:
    h, w = tile_img.shape[:2]
    inp = torch.from_numpy(np.ascontiguousarray(tile_img.transpose(2, 0, 1)))
    sample = DetDataSample(metainfo=dict(meta or {}, img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    return inp, sample


@torch.no_grad()
def sniper_tiled_inference(model, image: Union[str, np.ndarray],
                           scales: Sequence[Scale] = SNIPER_COCO_TILED['scales'],
                           test_ranges=SNIPER_COCO_TILED['test_ranges'],
                           chip_size: int = 512, stride: Optional[Union[int, Sequence[int]]] = None,
                           batch_size: int = 8, border_delta: float = 10,
                           nms: Optional[dict] = SNIPER_COCO_TEST['nms'],
                           max_per_img: int = 200,
                           per_scale: Optional[dict] = SNIPER_COCO_TEST['per_scale'],
                           meta: Optional[dict] = None) -> InstanceData:
    """Detect objects in one (large) image with SNIPER's scales, tile by tile.

    Args:
        model: an mmdet detector (its ``test_step`` runs the data preprocessor).
        image: HxWx3 array as ``LoadImageFromFile`` gives it (BGR), or a path.
        scales: test scales, finest first (``'fit'``: chip_size / max side).
        test_ranges: per scale, (lo, hi) of sqrt(box area) in original pixels.
        chip_size: tile side K.
        stride: tile grid step (one int, or one per scale); None: :func:`default_stride`.
        batch_size: tiles per detector call.
        border_delta: tile pixels within which a box touching an inner tile border is dropped.
        nms, max_per_img: the merge (as :func:`merge_scale_detections`).
        per_scale: each tile's post-processing (as ``SNIPERTTAModel``).
        meta: extra meta for every tile's data sample (e.g. ``img_id``).

    Returns:
        ``InstanceData`` with ``bboxes`` (original pixels), ``scores``, ``labels``.
    """
    if isinstance(image, str):
        import mmcv
        image = mmcv.imread(image)
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    ranges = _check_ranges(test_ranges)
    if len(ranges) != len(scales):
        raise ValueError(f'{len(scales)} scales but {len(ranges)} test_ranges: give one per scale')
    if batch_size < 1:
        raise ValueError(f'batch_size={batch_size} must be >= 1')
    strides = (list(stride) if isinstance(stride, (list, tuple)) else [stride] * len(scales))
    if len(strides) != len(scales):
        raise ValueError(f'stride={stride!r}: give one int, or one per scale')
    h, w = image.shape[:2]
    crop = SNIPERChipCrop()
    per_scale_preds: List[InstanceData] = []
    with per_scale_post_processing(model, per_scale):
        for spec, rng, d in zip(scales, ranges, strides):
            s = resolve_scale(spec, w, h, chip_size)
            sw, sh = scaled_size(w, h, s)
            d = default_stride(chip_size, s, rng, w, h, border_delta) if d is None else int(d)
            tiles = tile_grid(sw, sh, chip_size, d)
            small = None
            if s < 1:  # downscaling: resize once (INTER_AREA as the chip crop), then slice
                small = crop._crop(image, [0, 0, sw, sh], s)
            boxes, scores, labels = [], [], []
            for start in range(0, len(tiles), batch_size):
                batch = tiles[start:start + batch_size]
                src = small if small is not None else (image if s == 1 else None)
                pix = [src[t[1]:t[3], t[0]:t[2]] if src is not None else
                       crop._crop(image, [int(v) for v in t], s) for t in batch]
                inputs, samples = zip(*[_tile_sample(p, meta) for p in pix])
                preds = model.test_step(dict(inputs=list(inputs), data_samples=list(samples)))
                for t, pred in zip(batch, preds):
                    inst = pred.pred_instances
                    b = inst.bboxes.float()
                    keep = ~cut_by_tile(b, t, sw, sh, border_delta)
                    shift = b.new_tensor([t[0], t[1], t[0], t[1]])
                    boxes.append((b[keep] + shift) / s)
                    scores.append(inst.scores[keep])
                    labels.append(inst.labels[keep])
            one = InstanceData()
            one.bboxes = torch.cat(boxes) if boxes else torch.zeros((0, 4))
            one.scores = torch.cat(scores) if scores else torch.zeros(0)
            one.labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
            per_scale_preds.append(one)
    out = merge_scale_detections(per_scale_preds, ranges, nms, max_per_img)
    out.bboxes[:, 0::2] = out.bboxes[:, 0::2].clamp(0, w)
    out.bboxes[:, 1::2] = out.bboxes[:, 1::2].clamp(0, h)
    return out


@LOOPS.register_module()
class SNIPERTiledTestLoop(TestLoop):
    """``TestLoop`` running :func:`sniper_tiled_inference` on each (original-size) test image.

    The test pipeline loads the image without resizing it (``LoadImageFromFile``,
    ``LoadAnnotations``, ``PackDetInputs``); the loop refuses images whose size differs from
    ``ori_shape``.

    Args:
        scales, test_ranges, chip_size, stride, batch_size, border_delta, nms, max_per_img,
        per_scale: as :func:`sniper_tiled_inference`.
        **kwargs: ``TestLoop``'s (``runner``, ``dataloader``, ``evaluator``, ``fp16``).
    """

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 scales=SNIPER_COCO_TILED['scales'], test_ranges=SNIPER_COCO_TILED['test_ranges'],
                 chip_size: int = 512, stride=None, batch_size: int = 8,
                 border_delta: float = 10, nms=SNIPER_COCO_TEST['nms'], max_per_img: int = 200,
                 per_scale=SNIPER_COCO_TEST['per_scale']):
        super().__init__(runner, dataloader, evaluator, fp16)
        if len(_check_ranges(test_ranges)) != len(scales):
            raise ValueError(f'{len(scales)} scales but {len(test_ranges)} test_ranges')
        self.tiled_args = dict(scales=tuple(scales), test_ranges=test_ranges,
                               chip_size=chip_size, stride=stride, batch_size=batch_size,
                               border_delta=border_delta, nms=nms, max_per_img=max_per_img,
                               per_scale=per_scale)

    @torch.no_grad()
    def run_iter(self, idx, data_batch) -> None:
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        outputs = []
        for inp, sample in zip(data_batch['inputs'], data_batch['data_samples']):
            ori = tuple(sample.metainfo.get('ori_shape', ()))
            if isinstance(inp, (list, tuple)) or tuple(inp.shape[-2:]) != ori:
                raise ValueError(
                    'SNIPERTiledTestLoop needs each test image at its original size (got input '
                    f'{tuple(getattr(inp, "shape", ()))} for ori_shape {ori}): drop Resize and '
                    'TestTimeAug from the test pipeline')
            img = inp.permute(1, 2, 0).cpu().numpy()
            meta = {k: v for k, v in sample.metainfo.items() if k in ('img_id', 'img_path')}
            out = sample.clone()
            out.pred_instances = sniper_tiled_inference(self.runner.model, img, meta=meta,
                                                        **copy.deepcopy(self.tiled_args))
            out.set_metainfo(dict(img_shape=ori, scale_factor=(1.0, 1.0)))
            outputs.append(out)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook('after_test_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs)
