"""FLOPs and parameters of a config's model: MMDetection's own ``get_flops.py``, run on mmext.

Same arguments and output as ``mmdet/tools/analysis_tools/get_flops.py`` (it is that script,
run after importing mmext), so the figure is by construction the one mmdet's tool gives:

    python tools/analysis_tools/get_flops.py CONFIG [--shape 640 640] [--num-images N]

Like mmdet's, it builds the config's validation dataset (to get a real image and its meta);
FLOPs count one multiply-add as one FLOP (mmengine's counter). For model-only counting with no
dataset use ``mmext.analysis.complexity`` or ``tools/analysis_tools/benchmark.py``.
"""
import os.path as osp
import runpy
import sys

import mmdet
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.utils.launch import DatasetNotFoundError, check_data_paths

MMDET_GET_FLOPS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools',
                           'get_flops.py')

if __name__ == '__main__':
    if len(sys.argv) > 1 and not sys.argv[1].startswith('-'):
        try:
            check_data_paths(Config.fromfile(sys.argv[1]), phases=('val', ))
        except DatasetNotFoundError as e:
            sys.exit(f'error: {e}')
    sys.argv[0] = MMDET_GET_FLOPS
    runpy.run_path(MMDET_GET_FLOPS, run_name='__main__')
