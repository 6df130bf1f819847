# OpenPose's hand network (Simon et al., CVPR 2017, arXiv:1704.07809; OpenPose's
# models/hand/pose_deploy.prototxt): VGG-19 trunk to conv4_4 + conv5_1, conv5_2, conv5_3_CPM
# (128-channel features shared by all stages), 6 stages of 7x7 convs, no BN, 22 maps per stage
# (21 keypoints + background); 36,832,324 parameters (mmext/pose/openpose_hand.py).
# Input as OpenPose: BGR, x / 256 - 0.5. A loss at every stage, the background map included.
# On CMU Panoptic hand with the benchmark's PCKh@0.7 (head_size), recipe and pipeline of
# cpm_hand_8xb32-210e_panoptic-hand-368x368.py (MMPose's hand recipe; OpenPose's own training
# schedule is not in its repository). test_cfg.mirror_left: HandsFromBody / tools/hand_demo.py
# mirror left-hand crops as OpenPose does (handExtractorCaffe.cpp, mirrorImage = hand == 0).
# Multi-scale test as OpenPose: tools/hand_demo.py --hand-scale-number 6 --hand-scale-range 0.4.
_base_ = './cpm_hand_8xb32-210e_panoptic-hand-368x368.py'
synthetic_config = 'configs/hand/openpose-hand_synthetic-96x96.py'

model = dict(
    data_preprocessor=dict(mean=[128., 128., 128.], std=[256., 256., 256.], bgr_to_rgb=False),
    backbone=dict(_delete_=True, type='OpenPoseHandNet', in_channels=3, out_channels=22,
                  num_stages=6),
    head=dict(_delete_=True, type='OpenPoseHandHead', in_channels=22, out_channels=22,
              num_stages=6, loss=dict(type='KeypointMSELoss', use_target_weight=True),
              decoder={{_base_.codec}}),
    test_cfg=dict(flip_test=False, mirror_left=True))
