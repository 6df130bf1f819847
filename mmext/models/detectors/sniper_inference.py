"""SNIPER inference: the detector at several scales, valid-range filter, merged by (soft-)NMS.

Singh, Najibi, Davis, NeurIPS 2018 (arXiv:1805.09300); the test set-up of the official code
(mahyarnajibi/SNIPER, ``lib/inference.py``: ``get_detections`` then ``aggregate``;
``configs/faster/sniper_res101_e2e.yml`` ``TEST``): full images at the training scales; *per
scale*, class scores above 1e-3, soft-NMS per class (gaussian, sigma 0.55) and the top 200
detections; then detections of each scale kept only when sqrt(area) (original pixels) lies in
that scale's *test* range (lo exclusive, hi inclusive: [0, 90], (32, 180], (75, inf) on COCO),
pooled, soft-NMS per class again and at most 200 per image.

The per-scale stage is the detector's own post-processing with its score threshold, NMS and
maximum replaced by the official ones while SNIPER tests (``per_scale``; the R-CNN head's
``test_cfg`` for two-stage detectors, the dense head's otherwise; keys the head's ``test_cfg``
does not have, e.g. CenterNet's missing ``nms``, are left alone). The RPN keeps its own
``test_cfg`` (official: 6000 pre-NMS, 300 post-NMS at IoU 0.7).

Two ways to run it, both driven by the config (the test pipeline's ``TestTimeAug`` gives one view
per scale, finest first, in the order of ``test_ranges``):

* ``test_cfg = dict(type='SNIPERTestLoop', test_ranges=..., ...)`` -- what mmext's
  ``tools/test.py CONFIG CKPT`` runs; checkpoints stay plain detector checkpoints.
* ``tta_model = dict(type='SNIPERTTAModel', ...)`` for mmdet's ``tools/test.py --tta``.

Inference is on full images per scale (the paper's choice); the scaled images are not cut into
chips at test time.
"""
import contextlib
import copy
import warnings
from typing import List, Optional, Sequence

import torch
from mmcv.ops import batched_nms
from mmdet.registry import LOOPS
from mmdet.structures import DetDataSample
from mmengine.model import BaseTTAModel
from mmengine.runner import TestLoop, ValLoop
from mmengine.structures import InstanceData

from mmext.registry import MODELS

# official TEST settings: ranges per scale (finest first), soft-NMS sigma 0.55, <= 200 dets
SOFT_NMS = dict(type='soft_nms', iou_threshold=0.3, sigma=0.55, min_score=1e-3,
                method='gaussian')
SNIPER_COCO_TEST = dict(
    test_ranges=((0, 90), (32, 180), (75, float('inf'))),
    nms=SOFT_NMS,
    max_per_img=200,
    # each scale's own post-processing (lib/inference.py get_detections: cls_thresh=1e-3,
    # soft-NMS, MAX_PER_IMAGE)
    per_scale=dict(score_thr=1e-3, nms=SOFT_NMS, max_per_img=200),
)


def _check_ranges(test_ranges) -> tuple:
    ranges = tuple((float(lo), float(hi)) for lo, hi in test_ranges)
    for i, (lo, hi) in enumerate(ranges):
        if not 0 <= lo < hi:
            raise ValueError(f'test_ranges[{i}]=({lo}, {hi}) must satisfy 0 <= lo < hi')
    if not ranges:
        raise ValueError('test_ranges is empty: give one (lo, hi) per test scale')
    return ranges


def merge_scale_detections(per_scale: Sequence[InstanceData],
                           test_ranges: Sequence[Sequence[float]],
                           nms_cfg: Optional[dict], max_per_img: int = 200) -> InstanceData:
    """Merge one image's detections from several scales (boxes in original pixels).

    Args:
        per_scale: ``pred_instances`` (bboxes, scores, labels, and ``masks`` in original pixels
            for instance segmentation) of each scale, finest first.
        test_ranges: per scale, (lo, hi) of sqrt(box area) in original pixels to keep: ``lo <
            side <= hi`` (``0 <= side`` when lo is 0), as the official ``aggregate``.
        nms_cfg: mmcv ``batched_nms`` config (``type`` ``'nms'`` or ``'soft_nms'``), applied per
            class; None: no suppression (concatenate and keep the top scores).
        max_per_img: detections kept after merging.
    """
    if len(per_scale) != len(test_ranges):
        raise ValueError(f'{len(per_scale)} test scales (TestTimeAug views) but '
                         f'{len(test_ranges)} test_ranges: give one range per scale')
    with_masks = bool(per_scale) and all('masks' in inst for inst in per_scale)
    boxes, scores, labels, masks = [], [], [], []
    for inst, (lo, hi) in zip(per_scale, test_ranges):
        b = inst.bboxes
        side = ((b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)).sqrt()
        keep = ((side > lo) | (lo <= 0)) & (side <= hi)
        boxes.append(b[keep])
        scores.append(inst.scores[keep])
        labels.append(inst.labels[keep])
        if with_masks:
            masks.append(inst.masks[keep])
    boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
    idx = torch.arange(len(boxes), device=boxes.device)
    out = InstanceData()
    if len(boxes) and nms_cfg is not None:
        dets, keep = batched_nms(boxes, scores, labels, dict(nms_cfg))
        boxes, scores, labels, idx = dets[:, :4], dets[:, 4], labels[keep], idx[keep]
    order = scores.argsort(descending=True)[:max_per_img]
    out.bboxes, out.scores, out.labels = boxes[order], scores[order], labels[order]
    if with_masks:
        out.masks = torch.cat(masks)[idx[order]]
    return out


def _post_cfg(detector):
    """The ``test_cfg`` the detector's final post-processing reads (R-CNN head, else dense)."""
    if not hasattr(detector, 'roi_head') and not hasattr(detector, 'bbox_head'):
        detector = getattr(detector, 'module', detector)  # a (distributed) wrapper
    roi = getattr(detector, 'roi_head', None)
    if roi is not None and getattr(roi, 'test_cfg', None) is not None:
        return roi.test_cfg
    head = getattr(detector, 'bbox_head', None)
    return getattr(head, 'test_cfg', None)


@contextlib.contextmanager
def per_scale_post_processing(detector, per_scale: Optional[dict]):
    """Temporarily replace the keys of ``per_scale`` that the detector's post-processing
    ``test_cfg`` has (score threshold, NMS, maximum per image)."""
    cfg = None if per_scale is None else _post_cfg(detector)
    if cfg is None:
        yield
        return
    saved = {k: cfg[k] for k in per_scale if k in cfg}
    for k in saved:
        cfg[k] = copy.deepcopy(per_scale[k])
    try:
        yield
    finally:
        for k, v in saved.items():
            cfg[k] = v


def _is_multi_view(data) -> bool:
    inputs = data.get('inputs') if isinstance(data, dict) else None
    return bool(inputs) and isinstance(inputs[0], (list, tuple))


@MODELS.register_module()
class SNIPERTTAModel(BaseTTAModel):
    """SNIPER's multi-scale test as an mmengine TTA model (views = scales, finest first).

    The test pipeline must be a ``TestTimeAug`` with one view per scale. A plain (one-view) batch
    is refused by default, since it would silently test a single scale; with
    ``allow_single_view=True`` it runs the detector as is, with a warning.

    Args:
        module: the detector (config or module).
        test_ranges: per view, (lo, hi) of sqrt(area) in original pixels (COCO default above).
        nms: ``batched_nms`` config for merging (default: soft-NMS, sigma 0.55).
        max_per_img: detections per image after merging (official: 200).
        per_scale: score threshold / NMS / maximum of each scale's own post-processing
            (official: 1e-3, soft-NMS, 200); None: the detector's ``test_cfg`` as configured.
        allow_single_view: run one-view batches as a plain test (warns) instead of raising.
    """

    def __init__(self, module, test_ranges=SNIPER_COCO_TEST['test_ranges'],
                 nms: Optional[dict] = SNIPER_COCO_TEST['nms'], max_per_img: int = 200,
                 per_scale: Optional[dict] = SNIPER_COCO_TEST['per_scale'],
                 allow_single_view: bool = False, **kwargs):
        super().__init__(module=module, **kwargs)
        self.test_ranges = _check_ranges(test_ranges)
        if nms is not None and nms.get('type', 'nms') not in ('nms', 'soft_nms'):
            raise ValueError(f"nms type {nms.get('type')!r} is not one of 'nms', 'soft_nms'")
        if per_scale is not None:
            bad = set(per_scale) - {'score_thr', 'nms', 'max_per_img'}
            if bad:
                raise ValueError(f'per_scale keys {sorted(bad)} are not among score_thr, nms, '
                                 'max_per_img')
        self.nms = None if nms is None else dict(nms)
        self.max_per_img = max_per_img
        self.per_scale = None if per_scale is None else dict(per_scale)
        self.allow_single_view = allow_single_view
        self._warned = False

    def merge_preds(self, data_samples_list: List[List[DetDataSample]]) -> List[DetDataSample]:
        merged = []
        for views in data_samples_list:
            out = views[0].clone() if hasattr(views[0], 'clone') else views[0]
            # the merged boxes are in original pixels: the sample describes the original image
            ori = tuple(out.metainfo.get('ori_shape', out.metainfo.get('img_shape')))
            meta = dict(img_shape=ori, scale_factor=(1.0, 1.0))
            if 'pad_shape' in out.metainfo:
                meta['pad_shape'] = ori
            out.set_metainfo(meta)
            out.pred_instances = merge_scale_detections(
                [v.pred_instances for v in views], self.test_ranges, self.nms, self.max_per_img)
            merged.append(out)
        return merged

    def test_step(self, data):
        if not _is_multi_view(data):
            if not self.allow_single_view:
                raise ValueError(
                    'SNIPER test got a one-view batch: the test pipeline is not a TestTimeAug '
                    f'with one view per scale ({len(self.test_ranges)} test_ranges); wrap the '
                    "scales' Resize steps in dict(type='TestTimeAug', ...) (see configs/sniper/"
                    ') or set allow_single_view=True to test one scale')
            if not self._warned:
                self._warned = True
                warnings.warn('SNIPER test: one-view batch (no TestTimeAug), testing a single '
                              'scale without the multi-scale merge')
            return self.module.test_step(data)
        with per_scale_post_processing(self.module, self.per_scale):
            return super().test_step(data)


class _SNIPERLoopMixin:
    """Runs each batch through :class:`SNIPERTTAModel`; ``_phase`` names the hooks to call."""
    _phase = 'test'

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 test_ranges=SNIPER_COCO_TEST['test_ranges'], nms=SNIPER_COCO_TEST['nms'],
                 max_per_img: int = 200, per_scale=SNIPER_COCO_TEST['per_scale'],
                 allow_single_view: bool = False):
        super().__init__(runner, dataloader, evaluator, fp16)
        self._sniper_args = dict(test_ranges=_check_ranges(test_ranges), nms=nms,
                                 max_per_img=max_per_img, per_scale=per_scale,
                                 allow_single_view=allow_single_view)
        self._tta = None

    def _sniper_test_step(self, data_batch):
        if self._tta is None or self._tta.module is not self.runner.model:
            self._tta = SNIPERTTAModel(self.runner.model, **self._sniper_args)
        return self._tta.test_step(data_batch)

    @torch.no_grad()
    def run_iter(self, idx, data_batch) -> None:
        self.runner.call_hook(f'before_{self._phase}_iter', batch_idx=idx,
                              data_batch=data_batch)
        outputs = self._sniper_test_step(data_batch)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(f'after_{self._phase}_iter', batch_idx=idx,
                              data_batch=data_batch, outputs=outputs)


@LOOPS.register_module()
class SNIPERTestLoop(_SNIPERLoopMixin, TestLoop):
    """mmengine's ``TestLoop`` with SNIPER's multi-scale merge (:class:`SNIPERTTAModel`).

    Args:
        test_ranges, nms, max_per_img, per_scale, allow_single_view: as
            :class:`SNIPERTTAModel`.
        **kwargs: ``TestLoop``'s (``runner``, ``dataloader``, ``evaluator``, ``fp16``).
    """


@LOOPS.register_module()
class SNIPERValLoop(_SNIPERLoopMixin, ValLoop):
    """mmengine's ``ValLoop`` with SNIPER's multi-scale merge (see :class:`SNIPERTestLoop`)."""
    _phase = 'val'
