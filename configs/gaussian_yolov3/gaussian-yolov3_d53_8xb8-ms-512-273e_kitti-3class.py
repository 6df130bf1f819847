# Gaussian YOLOv3 for KITTI-style driving data as in the paper: 3 classes, 512x512 input.
# KITTI's 2D labels must first be converted to COCO json (e.g. mmdet's dataset converters or
# any kitti->coco script), with the paper's split of the 7,481 training images into halves:
#   data/kitti/annotations/kitti_3class_train.json, .../kitti_3class_val.json,
#   images under data/kitti/training/image_2/.
# KITTI images are 1242x375: keep_ratio resizing to 512 keeps their aspect ratio.
_base_ = './gaussian-yolov3_d53_8xb8-ms-512-273e_coco.py'

classes = ('Car', 'Pedestrian', 'Cyclist')
data_root = 'data/kitti/'
model = dict(bbox_head=dict(num_classes=len(classes)))

train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/kitti_3class_train.json',
                 data_prefix=dict(img='training/image_2/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=4)))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/kitti_3class_val.json',
                 data_prefix=dict(img='training/image_2/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/kitti_3class_val.json')
test_evaluator = val_evaluator
