# The plain student of the COCO distillation pair: RetinaNet-MixNet-S-FPN (../mixnet/) with the
# anchors of its SpineNet teacher (octave_base_scale 3, the official SpineNet config; mmdet's
# RetinaNet default is 4). Distillation compares the heads anchor by anchor, so both must use
# the same boxes; train the student with ./retinanet_spinenet-49_to_mixnet-s_fpn_1x_coco.py and
# evaluate its checkpoint with this config:
#   python tools/test.py \
#       configs/distillation/retinanet_mixnet-s_fpn_spinenet-anchors_1x_coco.py CKPT
_base_ = '../mixnet/retinanet_mixnet-s_fpn_8xb2-1x_coco.py'
model = dict(bbox_head=dict(anchor_generator=dict(octave_base_scale=3)))
