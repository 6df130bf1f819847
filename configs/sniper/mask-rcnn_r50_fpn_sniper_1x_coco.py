# Mask R-CNN R50-FPN trained with SNIPER chips on COCO instance segmentation, tested at 3 scales
# merged by soft-NMS (Singh et al., NeurIPS 2018, arXiv:1805.09300; the official code trains
# Mask R-CNN on chips too: configs/faster/sniper_res101_e2e_mask.yml, WITH_MASK). Chips, ranges
# and the assigners: ./faster-rcnn_r50_fpn_sniper_1x_coco.py. SNIPERChipCrop scales and crops
# the polygons (or bitmaps) with the chip; the multi-scale merge keeps each kept box's mask.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', './sniper_coco-detection.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(
    train_cfg=dict(
        rpn=dict(assigner=dict(type='SNIPERMaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                               ignore_iou_thr=0.3)),
        rcnn=dict(assigner=dict(type='SNIPERMaxIoUAssigner', ignore_iou_thr=0.3))))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='SNIPERChipCrop'),  # polygons: exact, and cheap at scale 3
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
test_cfg = {{_base_.sniper_test_cfg}}
