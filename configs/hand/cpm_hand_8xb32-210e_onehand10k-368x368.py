# MMPose's Convolutional Pose Machine (Wei et al., arXiv:1602.00134; MMPose's CPM / CPMHead:
# 9x9 image towers with BN, 11x11 stage convs; 40,589,758 parameters) at the sizes of the hand
# network of Simon et al. (CVPR 2017, arXiv:1704.07809) -- NOT OpenPose's hand network (VGG-19
# trunk, 7x7 stages, no BN, 22 maps): that one is openpose-hand_vgg19-cpm6_8xb32-210e_*.py.
# Here on OneHand10K: 21 keypoints, 368x368 input, stride 8 (46x46 heatmaps), 6 stages, 128
# image-feature channels into every stage, a heatmap loss at every stage (CPMHead sums
# KeypointMSELoss over the stages). MMPose's OneHand10K recipe (pipeline, Adam 5e-4, 210 epochs,
# PCK@0.2 of the bbox, AUC, EPE). No background map (MMPose's codecs have none).
# Boxes: the dataset's hand boxes. At inference from body keypoints, tools/hand_demo.py makes
# them with the OpenPose rule (mmext/pose/hand_box.py, rule='openpose').
# Set the dataset path with data_root below or
#   --cfg-options train_dataloader.dataset.data_root=/path/ val_dataloader.dataset.data_root=/path/
_base_ = ('mmpose::hand_2d_keypoint/topdown_heatmap/onehand10k/'
          'td-hm_res50_8xb32-210e_onehand10k-256x256.py')
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
synthetic_config = 'configs/hand/cpm_hand_synthetic-96x96.py'

codec = dict(type='MSRAHeatmap', input_size=(368, 368), heatmap_size=(46, 46), sigma=2)
model = dict(
    backbone=dict(_delete_=True, type='CPM', in_channels=3, out_channels=21, feat_channels=128,
                  middle_channels=128, num_stages=6),
    head=dict(_delete_=True, type='CPMHead', in_channels=21, out_channels=21, num_stages=6,
              deconv_out_channels=None, final_layer=None,
              loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', rotate_factor=180, scale_factor=(0.7, 1.3)),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
