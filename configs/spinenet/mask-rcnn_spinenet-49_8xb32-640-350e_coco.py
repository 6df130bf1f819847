# Mask R-CNN with a SpineNet-49 backbone at 640 (paper Table 5: 42.9 box AP / 38.1 mask AP,
# 40.8 M params in the official implementation). SpineNet's level 3-7 outputs replace the FPN:
# the RPN uses all five levels (strides 8-128), the RoI extractors levels 3-6, and the recipe
# is mmext's 350-epoch RetinaNet one (scale jitter [0.5, 2.0], 350 epochs, swish, SyncBN,
# stochastic depth), not tensorflow/tpu's spinenet49_mrcnn.yaml.
# mmdet's standard RPN and RoI heads (2-fc box head, 4-conv mask head) are used unchanged.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
synthetic_config = 'configs/spinenet/retinanet_spinenet-49s_synthetic.py'

img_size = 640
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)
model = dict(
    data_preprocessor=dict(pad_size_divisor=128),
    backbone=dict(_delete_=True, type='SpineNet', arch='49', norm_cfg=norm_cfg,
                  act_cfg=dict(type='SiLU'), drop_path_rate=0.2),
    neck=None,
    rpn_head=dict(anchor_generator=dict(strides=[8, 16, 32, 64, 128])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
        mask_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
    paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[max_epochs - 30, max_epochs - 10], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(enable=False, base_batch_size=256)
