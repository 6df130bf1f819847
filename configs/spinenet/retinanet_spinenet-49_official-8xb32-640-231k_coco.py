# RetinaNet-SpineNet-49 at 640 with the official recipe: tensorflow/tpu
# models/official/detection/configs/spinenet/spinenet49_retinanet.yaml (44.3 AP, its header) on
# the defaults of retinanet_config.py, detection_config.py and base_config.py in its configs/.
# Each value below is checked against those files in tests/test_spinenet_recipe.py.
#
# * loss: focal alpha 0.25, gamma 1.5; Huber box loss, delta 0.1, box_loss_weight 50, summed
#   and divided by 4 x (positives + 1) (modeling/losses.py RetinanetBoxLoss.box_loss). TF's
#   Huber(delta) is delta x mmdet's SmoothL1(beta=delta), and mmdet divides by the positives
#   only, so the same gradient is SmoothL1Loss(beta=0.1, loss_weight=50 x 0.1 / 4 = 1.25);
# * matcher: IoU >= 0.5 positive, < 0.5 negative (match/unmatched_threshold 0.5/0.5), each
#   ground truth forced onto its best anchor (ArgMaxMatcher force_match_for_each_row);
# * 231,500 iterations at batch 256 (about 500 COCO epochs; 8 GPUs x 32), SGD momentum 0.9,
#   lr 0.28, linear warm-up from 0.0067 over 2,000 iterations, x0.1 at 217,610 and 226,870;
#   L2 weight decay 4e-5 on conv/linear kernels only (REGULARIZATION_VAR_REGEX: no BN, no
#   biases); gradient clipping at global norm 10;
# * SyncBN momentum 0.997 (PyTorch 0.003), eps 1e-4 (base_config batch_norm_activation);
#   swish; stochastic depth 0.2; anchor size 3; scale jitter [0.5, 2.0] at 640;
# * kernels: TF variance scaling (fan-in, truncated normal), SpineNet's default init here.
# Differences that remain: mmdet normalises by the positives, TF by positives + 1; mmdet
# resizes with RandomResize + RandomCrop where TF's parser scales the output size and crops.
# The *-350e_coco.py configs are mmext's earlier, shorter approximation (350 epochs, mmdet's
# RetinaNet losses); TF Model Garden's retinanet_spinenet_coco (official/vision/configs/
# retinanet.py) differs from this file in lr 0.32, 500 x 462 steps, drops at epochs 475 / 490,
# scale jitter [0.1, 2.0], BN momentum 0.99 / eps 1e-3.
_base_ = './retinanet_spinenet-49_8xb32-640-350e_coco.py'

# tensorflow/tpu base_config.py: batch_norm_momentum 0.997, batch_norm_epsilon 1e-4
norm_cfg = dict(type='SyncBN', momentum=0.003, eps=1e-4, requires_grad=True)  # 1 - 0.997
focal_gamma, focal_alpha = 1.5, 0.25
huber_delta, box_loss_weight = 0.1, 50
# 4 = the coordinates per positive anchor in TF's normaliser
mmdet_box_loss_weight = box_loss_weight * huber_delta / 4
iou_threshold = 0.5

model = dict(
    backbone=dict(norm_cfg=norm_cfg),
    bbox_head=dict(
        norm_cfg=norm_cfg,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=focal_gamma, alpha=focal_alpha,
                      loss_weight=1.0),
        loss_bbox=dict(_delete_=True, type='SmoothL1Loss', beta=huber_delta,
                       loss_weight=mmdet_box_loss_weight)),
    train_cfg=dict(assigner=dict(pos_iou_thr=iou_threshold, neg_iou_thr=iou_threshold,
                                 min_pos_iou=0.0)),
    # tensorflow/tpu detection_config.py postprocess: pre_nms_num_boxes 5000, score 0.05,
    # NMS IoU 0.5, 100 detections
    test_cfg=dict(nms_pre=5000, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=100))

# schedule in iterations, as the official total_steps / learning_rate_steps
batch_size = 256  # train_batch_size
max_iters = 231500
warmup_iters, warmup_lr = 2000, 0.0067
base_lr = 0.28
lr_steps = [217610, 226870]  # learning_rate_levels 0.028, 0.0028
steps_per_epoch = 118287 // batch_size  # COCO train2017 images per official step count

train_dataloader = dict(sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=10 * steps_per_epoch)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       # RetinaSepBNActHead shares each conv across levels (own BN per level):
                       # the shared weight must join one parameter group, not five
                       bypass_duplicate=True),
    clip_grad=dict(max_norm=10.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=lr_steps,
         gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10 * steps_per_epoch,
                                     max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=batch_size)
