from .depthwise_conv import depthwise_conv2d
from .eesp import EESP, StridedEESP, eesp_dilations
from .igc import CLCBlock, ChannelInterlace, channel_interlace, clc_full_receptive_field
from .mixconv import GroupedPointwiseConv2d, MixConv2d, split_channels
from .res_blocks import RES_BLOCKS, BasicResBlock, BottleneckResBlock, res_block_group
from .same_padding import (Conv2dSame, MaxPool2dSame, conv_module_same, convert_to_same_padding,
                           pad_same, same_pad_amounts)
from .weight_init import VarianceScalingInit, variance_scaling_init, variance_scaling_std

__all__ = [
    'BasicResBlock', 'BottleneckResBlock', 'CLCBlock', 'ChannelInterlace', 'EESP',
    'GroupedPointwiseConv2d', 'MixConv2d', 'RES_BLOCKS', 'StridedEESP', 'channel_interlace',
    'clc_full_receptive_field', 'conv_module_same', 'convert_to_same_padding', 'depthwise_conv2d',
    'eesp_dilations', 'pad_same', 'res_block_group', 'same_pad_amounts', 'split_channels',
    'VarianceScalingInit', 'variance_scaling_init', 'variance_scaling_std'
]
