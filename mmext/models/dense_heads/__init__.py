from .retina_sepbn_act_head import RetinaSepBNActHead

__all__ = ['RetinaSepBNActHead']
