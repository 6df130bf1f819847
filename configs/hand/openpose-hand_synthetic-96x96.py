# OpenPose's hand network (openpose-hand_vgg19-cpm6_8xb32-210e_panoptic-hand-368x368.py), all
# hidden widths x 1/8 (OpenPoseHandNet widen_factor), on the synthetic multiview hands at 96x96
# (12x12 maps): the same layer structure -- VGG-19 trunk, conv5_3_CPM features shared by 6 stages
# of 7x7 convs, no BN, 22 maps incl. background -- small enough to train on a CPU. Data, schedule
# and pipeline as cpm_hand_synthetic-96x96.py. The synthetic hands are right hands:
# mirror_left=True mirrors left-hand crops at inference (HandsFromBody), as OpenPose.
_base_ = './cpm_hand_synthetic-96x96.py'

model = dict(
    data_preprocessor=dict(mean=[128., 128., 128.], std=[256., 256., 256.], bgr_to_rgb=False),
    backbone=dict(_delete_=True, type='OpenPoseHandNet', in_channels=3, out_channels=22,
                  num_stages=6, widen_factor=0.125),
    head=dict(_delete_=True, type='OpenPoseHandHead', in_channels=22, out_channels=22,
              num_stages=6, loss=dict(type='KeypointMSELoss', use_target_weight=True),
              decoder={{_base_.codec}}),
    test_cfg=dict(flip_test=False, mirror_left=True))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
