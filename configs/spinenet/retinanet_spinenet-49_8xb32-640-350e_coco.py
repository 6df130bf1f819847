# RetinaNet with a SpineNet-49 backbone at 640 on COCO (Du et al. 2020, Table 3 of the paper:
# 85.4 B FLOPs, 28.5 M params, 44.3 AP test-dev) -- mmext's 350-epoch schedule, NOT the official
# recipe: mmdet's RetinaNet losses and matcher (focal gamma 2.0, L1 box loss, negatives below
# IoU 0.4) and 350 epochs, where the official run (tensorflow/tpu spinenet49_retinanet.yaml) uses
# focal gamma 1.5, a Huber box loss (delta 0.1, weight 50), IoU 0.5/0.5 and 231,500 iterations
# at batch 256 (about 500 epochs): that is retinanet_spinenet-49_official-8xb32-640-231k_coco.py.
# SpineNet replaces the FPN (neck=None); the head is RetinaNet's shared-conv head with per-level
# BN and swish as the official code. SyncBN on GPUs (mmext's tools/train.py turns it into BN on
# CPU-only machines). Schedule: swish, stochastic depth 0.2, scale jitter [0.5, 2.0], 350 epochs
# at batch 256 (8 GPUs x 32), SGD lr 0.28 (momentum 0.9, wd 4e-5), 5-epoch warm-up, x0.1 at the
# last 30 and 10 epochs.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
# without COCO: `python tools/train.py` points here
synthetic_config = 'configs/spinenet/retinanet_spinenet-49s_synthetic.py'

arch = '49'
img_size = 640
endpoint_channels = 256
head_convs, head_channels = 4, 256
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)
act_cfg = dict(type='SiLU')  # swish

model = dict(
    data_preprocessor=dict(pad_size_divisor=128),
    backbone=dict(
        _delete_=True,
        type='SpineNet',
        arch=arch,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        drop_path_rate=0.2),
    neck=None,
    bbox_head=dict(
        type='RetinaSepBNActHead',
        num_ins=5,
        in_channels=endpoint_channels,
        feat_channels=head_channels,
        stacked_convs=head_convs,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        # official config: anchor_size 3.0 (mmdet's RetinaNet default is 4)
        anchor_generator=dict(octave_base_scale=3),
        init_cfg=None))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(img_size, img_size), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(img_size, img_size),
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=32, num_workers=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 350
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.28, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0,
                       # RetinaSepBNActHead shares each conv across levels (own BN per level):
                       # the shared weight must join one parameter group, not five
                       bypass_duplicate=True),
    clip_grad=dict(max_norm=10, norm_type=2))  # official gradient_clip_norm
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[max_epochs - 30, max_epochs - 10], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(enable=False, base_batch_size=256)
