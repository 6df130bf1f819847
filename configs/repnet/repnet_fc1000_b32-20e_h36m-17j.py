# RepNet on Human3.6M with all 17 joints (the official code's released model is named 17j).
# Here the critic uses the official KCS matrix (train_repnet.py, kcs_layer): it needs the
# neck joint, which the 17-joint layout has.
_base_ = ['./repnet_fc1000_b32-20e_h36m-16j.py']
num_keypoints = 17
model = dict(num_keypoints=num_keypoints, keypoint_indices=None,
             critic=dict(skeleton='official'))
pipeline = [
    dict(type='GenerateTarget', encoder={{_base_.codec}}),
    dict(type='PackPoseInputs',
         meta_keys=('id', 'category_id', 'target_img_path', 'flip_indices', 'target_root')),
]
train_dataloader = dict(dataset=dict(pipeline=pipeline))
val_dataloader = dict(dataset=dict(pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='MPJPE', mode='mpjpe'),
    dict(type='MPJPE', mode='p-mpjpe'),
    dict(type='BoneSymmetryError', num_keypoints=num_keypoints),
]
test_evaluator = val_evaluator
