# Faster R-CNN R50-FPN trained with SNIPER chips, tested at 3 scales merged by soft-NMS
# (Singh et al., NeurIPS 2018, arXiv:1805.09300). Chip set-up: ./sniper_coco-detection.py.
# Out-of-range boxes are ignore regions: anchors/proposals overlapping them (IoF >= 0.5) are
# neither positive nor negative (ignore_iof_thr), as in the official code.
# Two stages as the paper: train with sniper.proposal_file=None (no negative chips), run
# tools/sniper_proposals.py, then train again with the proposal file.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py', './sniper_coco-detection.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(
    train_cfg=dict(
        rpn=dict(assigner=dict(ignore_iof_thr=0.5)),
        rcnn=dict(assigner=dict(ignore_iof_thr=0.5))))
test_cfg = {{_base_.sniper_test_cfg}}
