"""SNIPER inference: the detector at several scales, valid-range filter, merged by (soft-)NMS.

Singh, Najibi, Davis, NeurIPS 2018 (arXiv:1805.09300), as REFERENCE.md (SNIPER) summarises the
official test set-up: full images at the training scales, detections of each scale kept only
when sqrt(area) (original pixels) lies in that scale's *test* range ([0, 90], [32, 180],
[75, inf) on COCO), pooled and merged with soft-NMS (sigma 0.55), at most 200 per image.

Two ways to run it, both driven by the config (the test pipeline's ``TestTimeAug`` gives one view
per scale, finest first, in the order of ``test_ranges``):

* ``test_cfg = dict(type='SNIPERTestLoop', test_ranges=..., ...)`` -- what mmext's
  ``tools/test.py CONFIG CKPT`` runs; checkpoints stay plain detector checkpoints.
* ``tta_model = dict(type='SNIPERTTAModel', ...)`` for mmdet's ``tools/test.py --tta``.

Inference is on full images per scale (the paper's choice); the scaled images are not cut into
chips at test time.
"""
from typing import List, Optional, Sequence

import torch
from mmcv.ops import batched_nms
from mmdet.registry import LOOPS
from mmdet.structures import DetDataSample
from mmengine.model import BaseTTAModel
from mmengine.runner import TestLoop, ValLoop
from mmengine.structures import InstanceData

from mmext.registry import MODELS

# REFERENCE.md (SNIPER): test ranges per scale (finest first), soft-NMS sigma 0.55, <= 200 dets
SNIPER_COCO_TEST = dict(
    test_ranges=((0, 90), (32, 180), (75, float('inf'))),
    nms=dict(type='soft_nms', iou_threshold=0.3, sigma=0.55, min_score=1e-3, method='gaussian'),
    max_per_img=200,
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
        per_scale: ``pred_instances`` (bboxes, scores, labels) of each scale, finest first.
        test_ranges: per scale, (lo, hi) of sqrt(box area) in original pixels to keep.
        nms_cfg: mmcv ``batched_nms`` config (``type`` ``'nms'`` or ``'soft_nms'``), applied per
            class; None: no suppression (concatenate and keep the top scores).
        max_per_img: detections kept after merging.
    """
    if len(per_scale) != len(test_ranges):
        raise ValueError(f'{len(per_scale)} test scales (TestTimeAug views) but '
                         f'{len(test_ranges)} test_ranges: give one range per scale')
    boxes, scores, labels = [], [], []
    for inst, (lo, hi) in zip(per_scale, test_ranges):
        b = inst.bboxes
        side = ((b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)).sqrt()
        keep = (side >= lo) & (side <= hi)
        boxes.append(b[keep])
        scores.append(inst.scores[keep])
        labels.append(inst.labels[keep])
    boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
    out = InstanceData()
    if len(boxes) and nms_cfg is not None:
        dets, keep = batched_nms(boxes, scores, labels, dict(nms_cfg))
        boxes, scores, labels = dets[:, :4], dets[:, 4], labels[keep]
    order = scores.argsort(descending=True)[:max_per_img]
    out.bboxes, out.scores, out.labels = boxes[order], scores[order], labels[order]
    return out


@MODELS.register_module()
class SNIPERTTAModel(BaseTTAModel):
    """SNIPER's multi-scale test as an mmengine TTA model (views = scales, finest first).

    Args:
        module: the detector (config or module).
        test_ranges: per view, (lo, hi) of sqrt(area) in original pixels (COCO default above).
        nms: ``batched_nms`` config for merging (default: soft-NMS, sigma 0.55).
        max_per_img: detections per image after merging (paper: 200).
    """

    def __init__(self, module, test_ranges=SNIPER_COCO_TEST['test_ranges'],
                 nms: Optional[dict] = SNIPER_COCO_TEST['nms'], max_per_img: int = 200,
                 **kwargs):
        super().__init__(module=module, **kwargs)
        self.test_ranges = _check_ranges(test_ranges)
        if nms is not None and nms.get('type', 'nms') not in ('nms', 'soft_nms'):
            raise ValueError(f"nms type {nms.get('type')!r} is not one of 'nms', 'soft_nms'")
        self.nms = None if nms is None else dict(nms)
        self.max_per_img = max_per_img

    def merge_preds(self, data_samples_list: List[List[DetDataSample]]) -> List[DetDataSample]:
        merged = []
        for views in data_samples_list:
            out = views[0].clone() if hasattr(views[0], 'clone') else views[0]
            out.pred_instances = merge_scale_detections(
                [v.pred_instances for v in views], self.test_ranges, self.nms, self.max_per_img)
            merged.append(out)
        return merged

    def test_step(self, data):
        # a plain (single-view) batch, e.g. validation during training: the detector as is
        if isinstance(data, dict) and not isinstance(data['inputs'][0], (list, tuple)):
            return self.module.test_step(data)
        return super().test_step(data)


class _SNIPERLoopMixin:
    """Runs each batch through :class:`SNIPERTTAModel`; ``_phase`` names the hooks to call."""
    _phase = 'test'

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 test_ranges=SNIPER_COCO_TEST['test_ranges'], nms=SNIPER_COCO_TEST['nms'],
                 max_per_img: int = 200):
        super().__init__(runner, dataloader, evaluator, fp16)
        self._sniper_args = dict(test_ranges=_check_ranges(test_ranges), nms=nms,
                                 max_per_img=max_per_img)
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
        test_ranges, nms, max_per_img: as :class:`SNIPERTTAModel`.
        **kwargs: ``TestLoop``'s (``runner``, ``dataloader``, ``evaluator``, ``fp16``).
    """


@LOOPS.register_module()
class SNIPERValLoop(_SNIPERLoopMixin, ValLoop):
    """mmengine's ``ValLoop`` with SNIPER's multi-scale merge (see :class:`SNIPERTestLoop`)."""
    _phase = 'val'
