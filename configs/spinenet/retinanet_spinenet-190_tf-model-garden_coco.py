# RetinaNet-SpineNet-190 (1280) with weights converted from TF Model Garden
# (official/vision, experiment retinanet_spinenet_coco, model_id 190):
#   python tools/model_converters/spinenet_tf2mmext.py SRC checkpoints/retinanet_spinenet-190_tf-model-garden_coco.pth --arch 190
#   python tools/test.py configs/spinenet/retinanet_spinenet-190_tf-model-garden_coco.py checkpoints/retinanet_spinenet-190_tf-model-garden_coco.pth
# Same model as the from-scratch recipe it inherits, in Model Garden's layer conventions:
# TF 'same' padding on the stride-2 convs and 3x3/2 max-pools, the ratio-8 pool chain, BN eps
# 1e-3 / momentum 0.99 (PyTorch 0.01) -- see SpineNet(tf_compat=...) -- and Model Garden's
# anchors, centred in their cells (anchor.py: x = stride/2 + k * stride): center_offset=0.5.
# Fine-tune from it with this config and load_from (or --cfg-options load_from=...).
_base_ = './retinanet_spinenet-190_8xb32-1280-350e_coco.py'

model = dict(
    backbone=dict(tf_compat='model_garden'),
    bbox_head=dict(anchor_generator=dict(center_offset=0.5)))
# fine-tuning: load_from = 'checkpoints/retinanet_spinenet-190_tf-model-garden_coco.pth'
