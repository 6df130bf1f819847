# The demo detector shrunk for tests: 16 training images at 128 px, no random augmentation
# (resume equivalence needs a deterministic pipeline), LR schedule independent of max_epochs.
_base_ = '../../configs/demo/centernet_r18_synthetic.py'

img_scale = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackDetInputs'),
]
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
    batch_size=4, num_workers=0, persistent_workers=False, batch_sampler=None,
    dataset=dict(indices=16, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(indices=8, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=100)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6),
    # explicit `end`: mmengine defaults it to max_epochs, which the "interrupted" run changes
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=100, milestones=[1], gamma=0.5),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=3),
                     visualization=dict(draw=False))
randomness = dict(seed=0)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
