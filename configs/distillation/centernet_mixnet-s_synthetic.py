# A small CenterNet student for the synthetic distillation pair: MixNet-S (4.1 M-param ImageNet
# net, here its stride-8 output, 40 channels) under the same CenterNet head and output stride as
# the teacher ../spinenet/centernet_spinenet-49s_synthetic.py (SpineNet-49S level 3, stride 8).
# Same data, schedule and optimiser as the teacher (../demo/centernet_r18_synthetic.py). Inputs
# padded to multiples of 128 as the teacher's, so both heatmaps have the same size. Not
# channels-last: mmdet's CenterNet decoding calls .view() on the heatmap, which a channels-last
# tensor refuses.
_base_ = '../demo/centernet_r18_synthetic.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=128),
    backbone=dict(_delete_=True, type='MixNet', arch='S', out_indices=(1, ),
                  norm_cfg=dict(type='BN', eps=1e-3, requires_grad=True), channels_last=False),
    neck=None,
    bbox_head=dict(in_channels=40, feat_channels=64))
