from .eesp import EESP, StridedEESP, eesp_dilations
from .igc import CLCBlock, ChannelInterlace, channel_interlace, clc_full_receptive_field
from .mixconv import GroupedPointwiseConv2d, MixConv2d, split_channels
from .res_blocks import RES_BLOCKS, BasicResBlock, BottleneckResBlock, res_block_group

__all__ = [
    'BasicResBlock', 'BottleneckResBlock', 'CLCBlock', 'ChannelInterlace', 'EESP',
    'GroupedPointwiseConv2d', 'MixConv2d', 'RES_BLOCKS', 'StridedEESP', 'channel_interlace',
    'clc_full_receptive_field', 'eesp_dilations', 'res_block_group', 'split_channels'
]
