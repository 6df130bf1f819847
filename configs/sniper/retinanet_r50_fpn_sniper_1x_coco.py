# RetinaNet R50-FPN trained with SNIPER chips (beyond the paper: SNIPER with a one-stage
# detector), tested at 3 scales merged by soft-NMS. Chip set-up: ./sniper_coco-detection.py.
# Anchors whose IoU with an ignore region exceeds 0.3 get no loss (the official RPN rule).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', './sniper_coco-detection.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(train_cfg=dict(assigner=dict(type='SNIPERMaxIoUAssigner', ignore_iou_thr=0.3)))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
test_cfg = {{_base_.sniper_test_cfg}}
