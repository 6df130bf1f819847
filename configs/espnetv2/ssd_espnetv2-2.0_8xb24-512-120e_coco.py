# SSD on ESPNetv2 (s = 2.0) at 512 px: EdgeNets' SSD512 priors (strides 8..512). Paper: 24.54 mAP
# (3.2 B FLOPs). See the 300 px config for the deviations from EdgeNets.
_base_ = './ssd_espnetv2-2.0_8xb24-300-120e_coco.py'

input_size = 512
model = dict(
    bbox_head=dict(
        anchor_generator=dict(
            strides=[8, 16, 32, 64, 128, 512],
            min_sizes=[52, 133, 214, 295, 376, 457],
            max_sizes=[133, 214, 295, 376, 457, 538])))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Expand', mean=[123.675, 116.28, 103.53], to_rgb=True, ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.5, 1.5),
         saturation_range=(0.5, 1.5), hue_delta=18),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
