"""mmdet's SSDHead with its MMDetection 3.3 prediction bug fixed.

``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which ``SSDHead`` never
creates (it computes its loss with ``F.cross_entropy`` and skips ``AnchorHead.__init__``), so
validation and inference of any SSD detector fail with ``AttributeError: 'SSDHead' object has no
attribute 'loss_cls'`` (open-mmlab/mmdetection issues 11063, 11305, 11780; fix PR 11524 is
unmerged). Used by mmext's SSD configs (ESPNetv2).
"""
from mmdet.models.dense_heads import SSDHead

from ...registry import MODELS


@MODELS.register_module()
class FixedSSDHead(SSDHead):
    """``SSDHead`` that predicts under MMDetection 3.3 (same arguments, same weights)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # no loss module: the base predict path only asks it for `custom_cls_channels`
        self.loss_cls = None
