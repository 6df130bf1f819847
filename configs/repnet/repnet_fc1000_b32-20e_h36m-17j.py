# RepNet on Human3.6M with all 17 joints (the official code's released model is 17-joint too).
_base_ = ['./repnet_fc1000_b32-20e_h36m-16j.py']
num_keypoints = 17
model = dict(num_keypoints=num_keypoints, keypoint_indices=None)
val_evaluator = [
    dict(type='MPJPE', mode='mpjpe'),
    dict(type='MPJPE', mode='p-mpjpe'),
    dict(type='BoneSymmetryError', num_keypoints=num_keypoints),
]
test_evaluator = val_evaluator
