# RetinaNet R18-FPN with SNIPER on the embedded synthetic shapes: SNIPER with a one-stage detector
# (beyond the paper). Data, chips, schedule and multi-scale test: the Faster R-CNN synthetic
# config; the model is RetinaNet with mmext's RetinaSepBNActHead (per-level BN; mmdet's norm-free
# RetinaHead does not learn from scratch in CPU minutes, see configs/mixnet/ and the README),
# 128 channels, 2 stacked convs. Anchors whose IoU with an ignore region exceeds 0.3 get no loss.
_base_ = './faster-rcnn_r18_fpn_sniper_synthetic.py'

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    _delete_=True,
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
                  init_cfg=None),
    neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=128, start_level=1,
              add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        type='RetinaSepBNActHead', num_ins=5, num_classes=3, in_channels=128, feat_channels=128,
        stacked_convs=2, norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'), init_cfg=None,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type='SNIPERMaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                      min_pos_iou=0, ignore_iou_thr=0.3),
        sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
