# RetinaNet (FPN) with a MixNet-S backbone on COCO: mmdet's RetinaNet-R50 1x recipe with the
# backbone swapped (the MixConv paper, Tan & Le 2019, has no RetinaNet experiment; this is mmext's
# detector for the MixNet backbones). FPN on the stride 8/16/32 features (MixNet-S channels 40,
# 120, 200), P6/P7 from C5 as RetinaNet. BN as the official MixNet (momentum 0.01, eps 1e-3),
# SyncBN on GPUs (mmext's tools/train.py turns it into BN on CPU-only machines).
#
# ImageNet weights: build timm's `mixnet_s` with its weights where a download is possible, map
# them with `mmext.models.backbones.mixnet.convert_timm_mixnet`, save
# `dict(state_dict=...)` to the path below and set `pretrained`; timm's (non-tf_) MixNets were
# trained with BN eps 1e-5, so the backbone then uses eps 1e-5.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
# without COCO: `python tools/train.py` points here
synthetic_config = 'configs/mixnet/retinanet_mixnet-s_synthetic.py'

arch = 'S'
feat_channels = [40, 120, 200]  # strides 8, 16, 32 (mixnet.py docstring table)
pretrained = None  # e.g. 'checkpoints/mixnet_s_timm_mmext.pth'
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)

model = dict(
    backbone=dict(
        _delete_=True,
        type='MixNet',
        arch=arch,
        out_indices=(1, 2, 3),
        norm_cfg=norm_cfg,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained) if pretrained else None),
    neck=dict(in_channels=feat_channels, start_level=0, add_extra_convs='on_input',
              num_outs=5))
