# RetinaNet on clcNet-B: (a, b, c, d) = (1, 1, 7, 3) instead of clcNet-A's (1, 1, 5, 2).
_base_ = './retinanet_clcnet-a_fpn_1x_coco.py'

model = dict(backbone=dict(arch='B'))
