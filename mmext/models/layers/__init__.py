from .res_blocks import RES_BLOCKS, BasicResBlock, BottleneckResBlock, res_block_group

__all__ = ['RES_BLOCKS', 'BasicResBlock', 'BottleneckResBlock', 'res_block_group']
