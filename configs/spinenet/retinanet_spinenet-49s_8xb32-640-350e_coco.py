# SpineNet-49S (paper Table 1: filter scale 0.65, 128 endpoint filters): 33.8 B FLOPs,
# 12.0 M params, 41.5 AP test-dev at 640. Its head is 128 wide, like the endpoints.
# mmext's 350-epoch schedule with mmdet's RetinaNet losses, not the official recipe (see
# retinanet_spinenet-49_8xb32-640-350e_coco.py and the *_official-*_coco.py configs).
_base_ = './retinanet_spinenet-49_8xb32-640-350e_coco.py'
arch = '49S'
endpoint_channels = head_channels = 128
model = dict(
    backbone=dict(arch=arch),
    bbox_head=dict(in_channels=endpoint_channels, feat_channels=head_channels))
