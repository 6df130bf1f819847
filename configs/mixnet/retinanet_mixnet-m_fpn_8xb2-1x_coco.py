# RetinaNet (FPN) with a MixNet-M backbone on COCO; see retinanet_mixnet-s_fpn_8xb2-1x_coco.py.
# MixNet-M's stride 8/16/32 channels are the same as MixNet-S's (40, 120, 200).
_base_ = './retinanet_mixnet-s_fpn_8xb2-1x_coco.py'

arch = 'M'
model = dict(backbone=dict(arch=arch))
