# MMPose's CPM at hand-network sizes (not OpenPose's hand network, see
# cpm_hand_8xb32-210e_onehand10k-368x368.py) on CMU Panoptic hand (the paper's own data;
# MMPose's PanopticHand2DDataset, MMPose's converted annotation files panoptic_{train,test}.json).
# Metric: the benchmark's PCKh@0.7 -- PCK with the threshold 0.7 x the annotation's head_size
# (PanopticHand2DDataset reads `head_size` per hand; PCKAccuracy(norm_item='head') reports it as
# PCKh) -- plus AUC and EPE as the other hand configs.
_base_ = './cpm_hand_8xb32-210e_onehand10k-368x368.py'

dataset_type = 'PanopticHand2DDataset'
data_root = 'data/panoptic/'
train_dataloader = dict(dataset=dict(
    type=dataset_type, data_root=data_root, ann_file='annotations/panoptic_train.json',
    data_prefix=dict(img='')))
val_dataloader = dict(dataset=dict(
    type=dataset_type, data_root=data_root, ann_file='annotations/panoptic_test.json',
    data_prefix=dict(img='')))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='PCKAccuracy', thr=0.7, norm_item='head'),
    dict(type='AUC'),
    dict(type='EPE'),
]
test_evaluator = val_evaluator
