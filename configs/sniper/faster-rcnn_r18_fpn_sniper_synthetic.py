# Faster R-CNN R18-FPN with SNIPER on the embedded synthetic shapes (CPU minutes, from scratch:
# no weights can be downloaded). Same recipe as the COCO config, scaled to the synthetic images
# (mostly 320-640 px, 10 % 1024-1333 px; objects 8-330 px, median sqrt(area) ~36 px):
# * 256 px chips on a grid of 28-29 px drawn per epoch (half the official 512 px chip and its
#   randint(56, 60) step): a chip is as large as the
#   whole-image input of the other synthetic configs, so one chip costs one of their images;
# * scales 2.0, 1.0 and 256/max(w, h) ('fit', the analogue of the paper's 512/max(w, h));
# * train ranges [0, 40], [24, 112], [80, inf) px: the finest scale doubles the small objects
#   (8-40 px -> 16-80 px, as 3.0 makes COCO's 0-80 px boxes 0-240), the native scale takes the
#   middle and 'fit' the large ones; neighbours overlap as in the paper. Test ranges widen them
#   ([0, 48], [20, 136], [64, inf)) as the paper's test ranges widen its training ranges;
# * boxes clipped under 5 chip px are dropped (paper: 10 px in a 512 chip).
_base_ = './faster-rcnn_r50_fpn_sniper_1x_coco.py'

chip = dict(chip_size=256, stride=(28, 30), scales=(2.0, 1.0, 'fit'),
            valid_ranges=((0, 40), (24, 112), (80, 1e5)), min_box_size=5)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(depth=18, init_cfg=None, frozen_stages=-1, norm_eval=False,
                  norm_cfg=norm_cfg),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=512, num_classes=3)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='SNIPERChipCrop'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')
test_pipeline = [  # single scale (256 px, as the other synthetic configs): validation
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=meta_keys),
]
sniper_test_pipeline = [  # SNIPER's scales, finest first: tools/test.py
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale_factor=2.0, keep_ratio=True),
                      dict(type='Resize', scale_factor=1.0, keep_ratio=True),
                      dict(type='Resize', scale=(256, 256), keep_ratio=True)],
                     [dict(type='LoadAnnotations', with_bbox=True)],
                     [dict(type='PackDetInputs', meta_keys=meta_keys)]]),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        dataset=dict(_delete_=True, type='SyntheticShapesDataset', split='train',
                     filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline),
        **chip))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(_delete_=True, type='SyntheticShapesDataset', split='val', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(_delete_=True, type='SyntheticShapesDataset', split='val', test_mode=True,
                 pipeline=sniper_test_pipeline))
val_evaluator = dict(ann_file='data/synthetic/annotations/val.json')
test_evaluator = val_evaluator
test_cfg = dict(test_ranges=((0, 48), (20, 136), (64, 1e5)),
                nms=dict(type='soft_nms', iou_threshold=0.3, sigma=0.55, min_score=1e-3,
                         method='gaussian'),
                max_per_img=100)

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs // 2, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=8)
