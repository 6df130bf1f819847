from .centernet_stacked_head import CenterNetStackedHead
from .retina_sepbn_act_head import RetinaSepBNActHead

__all__ = ['CenterNetStackedHead', 'RetinaSepBNActHead']
