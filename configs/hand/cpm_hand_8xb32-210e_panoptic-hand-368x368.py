# Hand CPM (arXiv:1704.07809) on CMU Panoptic hand (the paper's own data; MMPose's
# PanopticHand2DDataset, MMPose's converted annotation files panoptic_{train,test}.json).
# Metrics: PCK@0.2 normalised by the hand box (as the other hand configs), AUC, EPE.
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
