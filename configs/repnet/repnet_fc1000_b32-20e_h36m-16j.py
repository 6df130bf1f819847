# RepNet (Wandt & Rosenhahn, CVPR 2019, arXiv:1902.09868) on Human3.6M, 16 joints, the
# official code's recipe: Adam 1e-4 (0.5, 0.9), batch 32, 20 epochs, lr / 10 every 5 epochs,
# 1 critic step per generator step, WGAN-GP weight 10. Weak supervision: the critic sees the
# 3D poses of the training subjects (S1, S5-S8) as an unpaired, independently sampled pool;
# the 2D->3D pairing is never used for training, only for MPJPE / PA-MPJPE on S9 and S11.
# Data: MMPose's Human3.6M annotations (tools/dataset_converters/preprocess_h36m.py of MMPose)
# under data_root; set `data_root` here to your copy (with --cfg-options, set
# train_dataloader.dataset.data_root, val_dataloader.dataset.data_root and
# model.pose3d_pool.data_root). Nothing is downloaded.
_base_ = ['mmpose::_base_/default_runtime.py']
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
synthetic_config = 'configs/repnet/repnet_fc256_b64-15e_synthetic-16j.py'

data_root = 'data/h36m/'
num_keypoints = 16
keypoint_indices = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16]  # 17 minus neck_base

# Losses as the official code (train_repnet.py): joint-weighted L1 reprojection loss (root 0,
# neck and head 0.1) and the L1 camera loss; the paper's Frobenius forms are rep_loss /
# cam_loss='frobenius'. The critic's bones: Human3.6M's skeleton (the official KCS matrix needs
# the neck joint, which this 16-joint layout drops; the 17-joint config uses it).
model = dict(
    type='RepNet',
    num_keypoints=num_keypoints,
    keypoint_indices=keypoint_indices,
    backbone=dict(type='RepNetGenerator', width=1000, shared_blocks=1, pose_blocks=2,
                  camera_blocks=2),
    head=dict(type='RepNetHead'),
    critic=dict(type='RepNetCritic', use_kcs=True, width=100, kcs_width=1000),
    pose3d_pool=dict(type='Pose3dPool', data_root=data_root,
                     ann_file='annotation_body3d/fps50/h36m_train.npz', key='S'),
    adv_weight=1.0, rep_weight=1.0, cam_weight=1.0, gp_weight=10.0,
    critic_steps=1, rep_loss='official', cam_loss='l1',
    test_cfg=dict(flip_test=False))

optim_wrapper = dict(
    constructor='RepNetOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.9))),
    critic=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.9))))
param_scheduler = [dict(type='MultiStepLR', milestones=[5, 10, 15], gamma=0.1, by_epoch=True)]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=1)

# 2D keypoints go to the model as (1, 17, 2) pixels; RepNet centres and scales them and picks
# its 16 joints itself. The codec only provides target_root (the ground-truth root, added back
# for evaluation); LiftingTargetSubset gives the evaluation target the model's 16 joints.
codec = dict(type='ImagePoseLifting', num_keypoints=17, root_index=0, remove_root=False,
             reshape_keypoints=False)
pipeline = [
    dict(type='GenerateTarget', encoder=codec),
    dict(type='LiftingTargetSubset', keypoint_indices=keypoint_indices),
    dict(type='PackPoseInputs',
         meta_keys=('id', 'category_id', 'target_img_path', 'flip_indices', 'target_root')),
]
dataset_type = 'Human36mDataset'
train_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, ann_file='annotation_body3d/fps50/h36m_train.npz',
                 seq_len=1, causal=True, keypoint_2d_src='gt', data_root=data_root,
                 data_prefix=dict(img='images/'), pipeline=pipeline))
val_dataloader = dict(
    batch_size=256, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type=dataset_type, ann_file='annotation_body3d/fps50/h36m_test.npz',
                 seq_len=1, causal=True, keypoint_2d_src='gt', data_root=data_root,
                 data_prefix=dict(img='images/'), pipeline=pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='MPJPE', mode='mpjpe'),
    dict(type='MPJPE', mode='p-mpjpe'),
    dict(type='BoneSymmetryError', num_keypoints=num_keypoints),
]
test_evaluator = val_evaluator

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, save_best='P-MPJPE', rule='less',
                    max_keep_ckpts=2))
visualizer = dict(type='Pose3dLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
