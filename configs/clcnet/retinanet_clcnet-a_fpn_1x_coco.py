# RetinaNet on clcNet-A (Zhang, CVPR 2018, arXiv:1712.06145): stages 2-4 of the backbone
# (strides 8/16/32; 256/512/1024 channels) feed mmdet's FPN, which adds P6/P7 from the stride-32
# input. mmdet's RetinaNet 1x recipe otherwise. There are no ImageNet weights for clcNet in
# PyTorch (the official ones are Torch7 .t7 files), so this trains from scratch unless you
# convert them; expect a longer schedule to be needed than the 1x that suits pretrained ResNets.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='CLCNet',
        arch='A',
        out_indices=(1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False),
    neck=dict(in_channels=[256, 512, 1024], start_level=0, add_extra_convs='on_input',
              num_outs=5))
