"""RetinaNet head with per-level BN and a configurable activation (SpineNet's head).

The RetinaNet head of SpineNet (Du et al., CVPR 2020, Sec. 4.1; official
``modeling/architecture/heads.py``) shares its 3x3 convs across levels, keeps a separate BN per
level -- mmdet's :class:`RetinaSepBNHead` -- and uses the backbone's activation (swish) where
mmdet hard-wires ReLU. Only the activation is overridden here.
"""
from mmcv.cnn import build_activation_layer
from mmdet.models.dense_heads import RetinaSepBNHead

from ...registry import MODELS


@MODELS.register_module()
class RetinaSepBNActHead(RetinaSepBNHead):
    """:class:`RetinaSepBNHead` with ``act_cfg`` (default swish, ``dict(type='SiLU')``).

    Args:
        act_cfg (dict): activation after each stacked conv + BN.
        **kwargs: as :class:`mmdet.models.dense_heads.RetinaSepBNHead` (``num_ins`` = number
            of levels, ``stacked_convs``, ``feat_channels``, ``norm_cfg`` ...).
    """

    def __init__(self, *args, act_cfg=dict(type='SiLU'), **kwargs):
        self.act_cfg = act_cfg
        super().__init__(*args, **kwargs)

    def _init_layers(self):
        super()._init_layers()
        for convs in list(self.cls_convs) + list(self.reg_convs):
            for conv_module in convs:
                conv_module.activate = build_activation_layer(self.act_cfg)
