from .centernet_stacked_head import CenterNetStackedHead
from .gaussian_yolo_head import GaussianYOLOV3Head
from .retina_sepbn_act_head import RetinaSepBNActHead
from .ssd_head import FixedSSDHead

__all__ = ['CenterNetStackedHead', 'FixedSSDHead', 'GaussianYOLOV3Head', 'RetinaSepBNActHead']
