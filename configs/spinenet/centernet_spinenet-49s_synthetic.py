# SpineNet-49S as the backbone of a CenterNet on the synthetic shapes: the SpineNet variant that
# learns in CPU minutes from scratch (RetinaNet's focal-loss head needs far more iterations than a
# CPU budget allows, see README). CenterNet reads SpineNet's level-3 output (stride 8, 128
# channels); inputs are padded to multiples of 128 as SpineNet requires.
_base_ = '../demo/centernet_r18_synthetic.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=128),
    backbone=dict(_delete_=True, type='SpineNet', arch='49S', out_levels=(3, ),
                  act_cfg=dict(type='SiLU')),
    neck=None,
    bbox_head=dict(in_channels=128, feat_channels=64))
