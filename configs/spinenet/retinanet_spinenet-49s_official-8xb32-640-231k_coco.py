# RetinaNet-SpineNet-49S at 640 with the official recipe (tensorflow/tpu
# configs/spinenet/spinenet49S_retinanet.yaml, 41.5 AP): the SpineNet-49 recipe with
# model_id 49S and a 128-wide head (retinanet_head num_filters 128). See
# retinanet_spinenet-49_official-8xb32-640-231k_coco.py.
_base_ = './retinanet_spinenet-49_official-8xb32-640-231k_coco.py'
arch = '49S'
endpoint_channels = head_channels = 128
model = dict(
    backbone=dict(arch=arch),
    bbox_head=dict(in_channels=endpoint_channels, feat_channels=head_channels))
