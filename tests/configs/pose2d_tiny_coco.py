# A tiny COCO-17 top-down 2D pose model (ResNet-18, 64x64 input) for tests that need a 2D model
# in MMPose's inferencers; run with random weights (nothing is downloaded).
_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py'
codec = dict(type='MSRAHeatmap', input_size=(64, 64), heatmap_size=(16, 16), sigma=2)
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    head=dict(in_channels=512, out_channels=17, deconv_out_channels=(32, 32, 32),
              deconv_kernel_sizes=(4, 4, 4), decoder=codec))
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
