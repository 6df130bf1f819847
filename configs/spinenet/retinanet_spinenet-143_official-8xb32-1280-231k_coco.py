# RetinaNet-SpineNet-143 at 1280 with the official recipe (tensorflow/tpu
# configs/spinenet/spinenet143_retinanet.yaml, 50.6 AP): the SpineNet-49 recipe with model_id
# 143, output_size 1280, stochastic depth 0.16, scale jitter [0.1, 1.9] and the default anchor
# size 4 (the yaml sets no anchor_size; detection_config.py: 4.0). See
# retinanet_spinenet-49_official-8xb32-640-231k_coco.py.
_base_ = './retinanet_spinenet-49_official-8xb32-640-231k_coco.py'
arch = '143'
img_size = 1280
scale_range = (0.1, 1.9)
model = dict(
    backbone=dict(arch=arch, drop_path_rate=0.16),
    bbox_head=dict(anchor_generator=dict(octave_base_scale=4)))
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(img_size, img_size), ratio_range=scale_range,
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
