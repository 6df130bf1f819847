# Mask R-CNN R18-FPN with SNIPER on the embedded synthetic shapes (exact polygon masks): the
# synthetic instance-segmentation check of the chip pipeline. Chips, scales, ranges, schedule
# and multi-scale test: ./faster-rcnn_r18_fpn_sniper_synthetic.py; the mask head as mmdet's
# Mask R-CNN, at 128 channels.
_base_ = './faster-rcnn_r18_fpn_sniper_synthetic.py'

model = dict(
    type='MaskRCNN',
    data_preprocessor=dict(pad_mask=True),
    roi_head=dict(
        mask_roi_extractor=dict(type='SingleRoIExtractor',
                                roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
                                out_channels=128, featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(type='FCNMaskHead', num_convs=4, in_channels=128, conv_out_channels=128,
                       num_classes=3,
                       loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(rcnn=dict(mask_size=28)),
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='SNIPERChipCrop'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
