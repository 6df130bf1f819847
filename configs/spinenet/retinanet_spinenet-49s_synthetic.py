# RetinaNet-SpineNet-49S on the embedded synthetic shapes: trains in minutes on a CPU, from
# scratch (no weights can be downloaded). Same model as the COCO config except: 3 classes, BN
# with PyTorch's default momentum (the COCO recipe's 0.01 is too slow to settle in a few hundred
# iterations), no stochastic depth, 256 px input, AdamW with a short cosine schedule.
_base_ = './retinanet_spinenet-49s_8xb32-640-350e_coco.py'

img_size = 256
# momentum spelled out: the dict is merged into the base's (momentum 0.01, too slow for a few
# hundred iterations -- see configs/mixnet/retinanet_mixnet-s_synthetic.py)
norm_cfg = dict(type='BN', momentum=0.1, requires_grad=True)
model = dict(
    backbone=dict(norm_cfg=norm_cfg, drop_path_rate=0.0),
    bbox_head=dict(num_classes=3, norm_cfg=norm_cfg))

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
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=8),
                     checkpoint=dict(interval=max_epochs // 2, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=8)
