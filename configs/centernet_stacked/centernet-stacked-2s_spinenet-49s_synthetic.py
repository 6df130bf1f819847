# Stacked CenterNet on a SpineNet-49S backbone (its level-3 output: one stride-8, 128-channel
# map; SpineNet needs inputs padded to multiples of 128).
_base_ = './centernet-stacked-2s_r18_synthetic.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=128),
    backbone=dict(_delete_=True, type='SpineNet', arch='49S', out_levels=(3, ),
                  act_cfg=dict(type='SiLU')),
    neck=None,
    bbox_head=dict(in_channels=128, feat_channels=64))
