from .clcnet import CLCNet
from .espnetv2 import ESPNetv2
from .mixnet import MixNet
from .spinenet import SpineNet

__all__ = ['CLCNet', 'ESPNetv2', 'MixNet', 'SpineNet']
