# SSD on ESPNetv2 (s = 2.0) at 300 px -- the EdgeNets detection setting (Mehta et al., CVPR 2019,
# arXiv:1811.11431; sacmehta/EdgeNets model/detection): backbone levels 3-5 (strides
# 8/16/32; 256/512/1280 channels: level 5 keeps the final 1x1 and the image shortcut, as
# EdgeNets' ESPNetv2SSD), three extra levels of 512/256/128 channels down to 1x1, six
# anchors per location with the EdgeNets prior sizes (0.1-1.05 x image, strides 8..300).
# Deviation: mmdet's depth-wise SSDNeck/SSDHead replace EdgeNets' EESP-pyramid bottom-up
# decoder, and the ssdlite COCO recipe (SGD, cosine, 120 x 5 epochs, from scratch) replaces
# EdgeNets' ImageNet-pretrained training. Paper: 20.80 mAP at 300 px (1.1 B FLOPs, 5.81 M).
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'

# mmext.models.dense_heads.ssd_head: FixedSSDHead (mmdet 3.3's SSDHead cannot predict);
# mmext.engine: CyclicWarmRestartLR
custom_imports = dict(
    imports=['mmext', 'mmext.models.dense_heads.ssd_head', 'mmext.engine'],
    allow_failed_imports=False)

input_size = 300
norm_cfg = dict(type='BN', eps=0.001, momentum=0.03)
model = dict(
    backbone=dict(
        _delete_=True,
        type='ESPNetv2',
        widen_factor=2.0,
        out_indices=(2, 3, 4),
        norm_cfg=norm_cfg),
    neck=dict(
        in_channels=(256, 512, 1280),
        out_channels=(256, 512, 1280, 512, 256, 128),
        level_strides=(2, 2, 2),
        # the last extra level reduces 3x3 to 1x1 (EdgeNets: global pooling)
        level_paddings=(1, 1, 0),
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='FixedSSDHead',
        in_channels=(256, 512, 1280, 512, 256, 128),
        norm_cfg=norm_cfg,
        anchor_generator=dict(
            strides=[8, 16, 32, 64, 100, 300],
            min_sizes=[30, 77, 125, 172, 220, 267],
            max_sizes=[77, 125, 172, 220, 267, 315])))

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
