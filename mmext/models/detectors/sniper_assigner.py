"""SNIPER's ignore rule for anchors and proposals near invalid boxes (arXiv:1805.09300).

In a SNIPER chip the boxes that are not the chip's targets -- out of the scale's range, or pieces
of boxes assigned to another chip -- are *invalid*: the official RPN label assignment
(mahyarnajibi/SNIPER, ``lib/data_utils/data_workers.py``, ``anchor_worker.worker``) first labels
anchors as usual (negative below IoU 0.4, positive from 0.5 and each box's best anchor) and then
marks every anchor whose IoU with an invalid box exceeds 0.3 as ignored
(``labels[max_overlapsn > 0.3] = -1``), positives included.

mmdet's ``MaxIoUAssigner`` only offers an IoF test against ignore regions (``ignore_iof_thr``:
intersection over the anchor's area). :class:`SNIPERMaxIoUAssigner` adds the official IoU test;
the mmext SNIPER configs use it with ``ignore_iou_thr=0.3``. ``ignore_iof_thr`` still works as in
mmdet (e.g. ``ignore_iof_thr=0.5, ignore_iou_thr=-1`` for mmdet's rule).
"""
from typing import Optional

from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData


@TASK_UTILS.register_module()
class SNIPERMaxIoUAssigner(MaxIoUAssigner):
    """``MaxIoUAssigner`` that also ignores priors whose IoU with an ignore box exceeds
    ``ignore_iou_thr`` (official SNIPER: 0.3).

    Args:
        ignore_iou_thr: IoU above which a prior overlapping an ignore box is ignored (neither
            positive nor negative); negative: off.
        **kwargs: ``MaxIoUAssigner``'s (``pos_iou_thr``, ``neg_iou_thr``, ``ignore_iof_thr``...).
    """

    def __init__(self, *args, ignore_iou_thr: float = 0.3, **kwargs):
        super().__init__(*args, **kwargs)
        if self.perm_repeat_gt_cfg is not None:
            raise ValueError('SNIPERMaxIoUAssigner does not support perm_repeat_gt_cfg')
        self.ignore_iou_thr = ignore_iou_thr

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        priors = pred_instances.priors
        ignore = None if gt_instances_ignore is None else gt_instances_ignore.bboxes
        if (self.ignore_iou_thr < 0 or ignore is None or ignore.numel() == 0
                or priors.numel() == 0):
            return super().assign(pred_instances, gt_instances, gt_instances_ignore, **kwargs)
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        device = priors.device
        on_cpu = self.gpu_assign_thr > 0 and gt_bboxes.shape[0] > self.gpu_assign_thr
        if on_cpu:
            priors, gt_bboxes, gt_labels = priors.cpu(), gt_bboxes.cpu(), gt_labels.cpu()
            ignore = ignore.cpu()
        overlaps = self.iou_calculator(gt_bboxes, priors)
        drop = self.iou_calculator(priors, ignore).max(dim=1).values > self.ignore_iou_thr
        if self.ignore_iof_thr > 0:
            if self.ignore_wrt_candidates:
                iof = self.iou_calculator(priors, ignore, mode='iof').max(dim=1).values
            else:
                iof = self.iou_calculator(ignore, priors, mode='iof').max(dim=0).values
            drop |= iof > self.ignore_iof_thr
        overlaps[:, drop] = -1
        result = self.assign_wrt_overlaps(overlaps, gt_labels)
        # also without targets (mmdet then makes every prior background) and over positives,
        # as the official code sets the label last
        result.gt_inds[drop] = -1
        if result.labels is not None:
            result.labels[drop] = -1
        if on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            if result.labels is not None:
                result.labels = result.labels.to(device)
        return result
