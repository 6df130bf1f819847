# SSD-ESPNetv2 (300 px) on the embedded synthetic shapes: trains in minutes on a CPU, from
# scratch. Same detector as the COCO config except the width scale s = 0.5 (s = 2.0 takes ~10 s
# an iteration on a 2-core CPU), the neck widths that follow from it, 3 classes and BN with
# PyTorch's default momentum; light augmentation; AdamW under the ESPNetv2 paper's cyclic schedule
# (CyclicWarmRestartLR: linear decay from 5x to 1x the base lr in cycles of T epochs, warm
# restarts, range halved at the milestones), here compressed from 300 to 24 epochs.
_base_ = './ssd_espnetv2-2.0_8xb24-300-120e_coco.py'

input_size = 300
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # level 5 without the final 1x1 and the image shortcut (ESPNetv2(final_conv=False,
    # level5_image_shortcut=False), 256 channels): the lighter backbone these synthetic runs
    # were measured with; the COCO configs use EdgeNets' level 5
    backbone=dict(widen_factor=0.5, final_conv=False, level5_image_shortcut=False,
                  norm_cfg=norm_cfg),
    neck=dict(in_channels=(64, 128, 256), out_channels=(64, 128, 256, 256, 128, 64),
              norm_cfg=norm_cfg),
    bbox_head=dict(in_channels=(64, 128, 256, 256, 128, 64), num_classes=3,
                   norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
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

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='CyclicWarmRestartLR', max_factor=5.0, cycle_len=4, milestones=[13, 21],
         gamma=0.5, warmup_epochs=1, by_epoch=True),
]
default_hooks = dict(logger=dict(interval=8),
                     checkpoint=dict(interval=max_epochs // 2, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=8)
