# RepNet on the synthetic 3D pose set (mmext/pose/synthetic_poses3d.py): Human3.6M's layout
# through MMPose's Human36mDataset, generated on first use; trains on a CPU in minutes.
# Smaller and faster than the paper to fit that budget: 256-wide layers, batch 64, lr 1e-3
# (measured: with the paper's 1e-4 and a few thousand steps the model is still far from
# converged), 15 epochs (4.7k generator steps), lr / 10 after epoch 10.
_base_ = ['./repnet_fc1000_b32-20e_h36m-16j.py']
synthetic_config = None
data_root = 'data/synthetic_poses3d/'

# Paper losses (Frobenius L_rep and L_cam): the figures in the README were measured with them.
model = dict(
    backbone=dict(width=256),
    critic=dict(kcs_width=256),
    pose3d_pool=dict(_delete_=True, type='SyntheticPose3dPool', data_root=data_root),
    rep_loss='frobenius', cam_loss='frobenius')
optim_wrapper = dict(
    generator=dict(optimizer=dict(lr=1e-3)),
    critic=dict(optimizer=dict(lr=1e-3)))
param_scheduler = [dict(type='MultiStepLR', milestones=[10], gamma=0.1, by_epoch=True)]
train_cfg = dict(max_epochs=15, val_interval=5)

train_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='SyntheticPose3dDataset', split='train',
                 data_root=data_root, seq_len=1, causal=True,
                 pipeline={{_base_.pipeline}}))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='SyntheticPose3dDataset', split='val',
                 data_root=data_root, seq_len=1, causal=True,
                 pipeline={{_base_.pipeline}}, test_mode=True))
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=50))
randomness = dict(seed=0)
