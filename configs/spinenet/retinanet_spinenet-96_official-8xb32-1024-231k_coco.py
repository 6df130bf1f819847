# RetinaNet-SpineNet-96 at 1024 with the official recipe (tensorflow/tpu
# configs/spinenet/spinenet96_retinanet.yaml, 48.5 AP): the SpineNet-49 recipe with model_id 96
# and output_size 1024. See retinanet_spinenet-49_official-8xb32-640-231k_coco.py.
_base_ = './retinanet_spinenet-49_official-8xb32-640-231k_coco.py'
arch = '96'
img_size = 1024
model = dict(backbone=dict(arch=arch))
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
