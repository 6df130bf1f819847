# RepNet's headline protocol (Human3.6M with detected 2D keypoints; 89.9 mm quoted for the
# paper): train and test on 2D *detections*, as the official code does ("we directly train on 2D detections to learn
# the noise model of the detector", train_repnet.py). The official code uses Stacked-Hourglass
# detections; MMPose's Human3.6M data provides CPN detections in Human3.6M's 17-joint layout
# (joint_2d_det_files/cpn_ft_h36m_dbb_{train,test}.npy, as MMPose's
# video-pose-lift_tcn-*-cpn-ft_*_h36m.py configs), read with keypoint_2d_src='detection'.
# Otherwise the 17-joint config (official losses and KCS matrix). Set data_root as there.
_base_ = ['./repnet_fc1000_b32-20e_h36m-17j.py']

train_dataloader = dict(dataset=dict(
    keypoint_2d_src='detection',
    keypoint_2d_det_file='joint_2d_det_files/cpn_ft_h36m_dbb_train.npy'))
val_dataloader = dict(dataset=dict(
    keypoint_2d_src='detection',
    keypoint_2d_det_file='joint_2d_det_files/cpn_ft_h36m_dbb_test.npy'))
test_dataloader = val_dataloader
