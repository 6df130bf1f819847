# RetinaNet-MixNet-S on the embedded synthetic shapes: trains on a CPU from scratch (no weights
# can be downloaded). Same backbone as the COCO config; differences: 3 classes, BN with PyTorch's
# default momentum (the official 0.01 is too slow to settle in a few hundred iterations), a
# 128-channel FPN and head with 2 stacked convs (the COCO head is 7.5 of the 7.8 GFLOPs at 256 px;
# this one 1.1) with per-level BN (mmext's RetinaSepBNActHead, as the SpineNet synthetic config),
# anchors from 16 px, channels-last backbone (MixNet-M training step 1.05x-1.10x faster
# on CPU than NCHW, benchmarks/mixconv.py --network-only), 256 px input, AdamW 4e-3 with
# a short cosine schedule. Measured (20 epochs, ~14 min on 2 shared cores): loss 2.9 -> 0.64,
# bbox mAP 0.047 (AP50 0.119, APm 0.103).
_base_ = './retinanet_mixnet-s_fpn_8xb2-1x_coco.py'

img_size = 256
# momentum is spelled out: a dict here is merged into the base's norm_cfg, so leaving it out
# would keep the COCO config's 0.01 -- running statistics then lag the weights so far after a
# few hundred iterations that the eval-mode scores stay at the prior (mAP 0.000).
norm_cfg = dict(type='BN', momentum=0.1, eps=1e-3, requires_grad=True)
head_channels = 128
model = dict(
    backbone=dict(norm_cfg=norm_cfg, channels_last=True),
    neck=dict(out_channels=head_channels),
    bbox_head=dict(type='RetinaSepBNActHead', num_ins=5, num_classes=3, in_channels=head_channels,
                   feat_channels=head_channels, stacked_convs=2, norm_cfg=norm_cfg,
                   act_cfg=dict(type='ReLU'), init_cfg=None,
                   # the synthetic objects are 4-128 px at 256 px input: anchors from 16 px
                   # (COCO's octave_base_scale 4 starts at 32 px)
                   anchor_generator=dict(octave_base_scale=2)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(_delete_=True, type='SyntheticShapesDataset', split='train',
                 filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(_delete_=True, type='SyntheticShapesDataset', split='val', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='data/synthetic/annotations/val.json')
test_evaluator = val_evaluator

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=4e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=8),
                     checkpoint=dict(interval=max_epochs // 2, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=8)
