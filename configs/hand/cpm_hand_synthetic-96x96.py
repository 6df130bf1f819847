# MMPose's CPM (not OpenPose's hand network: see openpose-hand_synthetic-96x96.py) on the
# synthetic multiview hands (mmext/pose/synthetic_hands.py), small enough to
# train on a CPU in minutes: 6 stages and a loss at every stage as the paper, but 96x96 input
# (12x12 heatmaps; the paper model is 368x368 -> 46x46, see
# cpm_hand_8xb32-210e_onehand10k-368x368.py) and 32-channel feature paths (HandCPM's
# stem_channels; paper 128). Trains on the 'labelled' split (d_0 of multiview bootstrapping);
# tools/hand_bootstrap.py retrains it on bootstrapped labels. No flips: the hands are all right.
_base_ = './cpm_hand_8xb32-210e_onehand10k-368x368.py'

codec = dict(type='MSRAHeatmap', input_size=(96, 96), heatmap_size=(12, 12), sigma=1.5)
model = dict(
    backbone=dict(_delete_=True, type='HandCPM', in_channels=3, out_channels=21,
                  feat_channels=32, middle_channels=32, stem_channels=32, num_stages=6),
    head=dict(decoder=codec),
    test_cfg=dict(flip_test=False))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomBBoxTransform', rotate_factor=30, scale_factor=(0.85, 1.15), shift_factor=0.1),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(
    batch_size=16, num_workers=1, persistent_workers=False,
    dataset=dict(_delete_=True, type='SyntheticHandDataset', split='labelled',
                 data_mode='topdown', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=1, persistent_workers=False,
    dataset=dict(_delete_=True, type='SyntheticHandDataset', split='val', data_mode='topdown',
                 test_mode=True, pipeline=val_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=60, val_interval=20)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=50, start_factor=0.01, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=60, milestones=[45], gamma=0.1, by_epoch=True),
]
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=20, save_best='AUC'))
# mmpose's AUC normalises by 30 px (the hand benchmarks' AUC over 0-30 px) -- images here are 128 px
