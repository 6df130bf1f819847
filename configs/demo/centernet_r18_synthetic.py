# The `make demo` detector: mmdet's CenterNet-R18 (no DCN) trained from scratch on the embedded
# synthetic shapes in a few CPU minutes. From scratch because no weights can be downloaded;
# AdamW because SGD from scratch barely moves in this budget (measured: RetinaNet-R18 with SGD
# lr 0.01 made no detections after 24 epochs, 10 CPU minutes).
_base_ = 'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

img_scale = (256, 256)
model = dict(
    backbone=dict(init_cfg=None),
    bbox_head=dict(num_classes=3))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# CenterNet's prediction needs the `border` meta key that RandomCenterCropPad(test_mode) writes
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomCenterCropPad', ratios=None, border=None, mean=[0, 0, 0], std=[1, 1, 1],
         to_rgb=True, test_mode=True, test_pad_mode=['logical_or', 31], test_pad_add_pix=1),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'border')),
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
    optimizer=dict(_delete_=True, type='AdamW', lr=5e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=2e-5),
]
default_hooks = dict(
    logger=dict(interval=8),
    checkpoint=dict(interval=max_epochs // 2, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=8)
# a fixed seed: `make demo` prints the same figures on every run on the same machine
randomness = dict(seed=0)
