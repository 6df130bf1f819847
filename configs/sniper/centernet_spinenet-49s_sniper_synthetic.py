# CenterNet on SpineNet-49S (the demo detector,
# configs/spinenet/centernet_spinenet-49s_synthetic.py) trained on SNIPER chips of the embedded synthetic shapes: SNIPER with an anchor-free one-stage
# detector (beyond the paper). Chips, scales, ranges and the multi-scale soft-NMS test: the
# Faster R-CNN synthetic config. CenterNet has no ignore mechanism: out-of-range boxes of a chip
# are dropped from its targets, so they count as background there (mmdet's CenterNetHead reads
# only gt_instances). Its test pipeline adds mmdet's CenterNet test padding, whose `border` meta
# the head needs, after each scale's resize.
_base_ = './faster-rcnn_r18_fpn_sniper_synthetic.py'

model = dict(
    _delete_=True,
    type='CenterNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=128),
    backbone=dict(type='SpineNet', arch='49S', out_levels=(3, ), act_cfg=dict(type='SiLU')),
    neck=None,
    bbox_head=dict(type='CenterNetHead', num_classes=3, in_channels=128, feat_channels=64,
                   loss_center_heatmap=dict(type='GaussianFocalLoss', loss_weight=1.0),
                   loss_wh=dict(type='L1Loss', loss_weight=0.1),
                   loss_offset=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=None,
    test_cfg=dict(topk=100, local_maximum_kernel=3, max_per_img=100))

meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'border')
center_pad = dict(type='RandomCenterCropPad', ratios=None, border=None, mean=[0, 0, 0],
                  std=[1, 1, 1], to_rgb=True, test_mode=True,
                  test_pad_mode=['logical_or', 127], test_pad_add_pix=1)
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    center_pad,
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=meta_keys),
]
sniper_test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale_factor=2.0, keep_ratio=True),
                      dict(type='Resize', scale_factor=1.0, keep_ratio=True),
                      dict(type='Resize', scale=(256, 256), keep_ratio=True)],
                     [center_pad],
                     [dict(type='LoadAnnotations', with_bbox=True)],
                     [dict(type='PackDetInputs', meta_keys=meta_keys)]]),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=sniper_test_pipeline))

# the demo detector's recipe
optim_wrapper = dict(optimizer=dict(lr=5e-3), clip_grad=dict(max_norm=35))
