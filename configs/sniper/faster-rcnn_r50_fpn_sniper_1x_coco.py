# Faster R-CNN R50-FPN trained with SNIPER chips, tested at 3 scales merged by soft-NMS
# (Singh et al., NeurIPS 2018, arXiv:1805.09300). Chip set-up: ./sniper_coco-detection.py.
# Boxes that are not a chip's targets (out of range, or pieces of boxes assigned to another chip)
# are ignore regions: anchors whose IoU with one exceeds 0.3 are neither positive nor negative,
# and RPN anchors are positive from IoU 0.5, negative below 0.4 -- the official anchor_worker and
# configs/faster/sniper_res101_e2e.yml (RPN_POSITIVE/NEGATIVE_OVERLAP). The R-CNN stage uses the
# same IoU-0.3 ignore rule (the official R-CNN targets come from a CUDA operator of its MXNet
# fork, which applies the chip's valid range; not ported).
# Two stages as the paper: train with sniper.proposal_file=None (no negative chips), run
# tools/sniper_proposals.py, then train again with the proposal file.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py', './sniper_coco-detection.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(
    train_cfg=dict(
        rpn=dict(assigner=dict(type='SNIPERMaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                               ignore_iou_thr=0.3)),
        rcnn=dict(assigner=dict(type='SNIPERMaxIoUAssigner', ignore_iou_thr=0.3))))
test_cfg = {{_base_.sniper_test_cfg}}
