# MMPose's CPM at hand-network sizes (not OpenPose's hand network, see
# cpm_hand_8xb32-210e_onehand10k-368x368.py) on COCO-WholeBody-Hand (CocoWholeBodyHandDataset):
# same model and recipe as cpm_hand_8xb32-210e_onehand10k-368x368.py.
# data_root holds annotations/coco_wholebody_{train,val}_v1.0.json, train2017/, val2017/.
_base_ = './cpm_hand_8xb32-210e_onehand10k-368x368.py'

dataset_type = 'CocoWholeBodyHandDataset'
data_root = 'data/coco/'
train_dataloader = dict(dataset=dict(
    type=dataset_type, data_root=data_root, ann_file='annotations/coco_wholebody_train_v1.0.json',
    data_prefix=dict(img='train2017/')))
val_dataloader = dict(dataset=dict(
    type=dataset_type, data_root=data_root, ann_file='annotations/coco_wholebody_val_v1.0.json',
    data_prefix=dict(img='val2017/')))
test_dataloader = val_dataloader
