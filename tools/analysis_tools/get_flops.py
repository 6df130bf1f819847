"""FLOPs and parameters of a config's model: MMDetection's own ``get_flops.py``, run on mmext.

    python tools/analysis_tools/get_flops.py CONFIG [--num-images N] [--cfg-options k=v ...]
    python tools/analysis_tools/get_flops.py CONFIG --shape H [W] [--cfg-options k=v ...]

Without ``--shape`` this is ``mmdet/tools/analysis_tools/get_flops.py`` itself, run after
importing mmext: same arguments, same output, same figure. Like mmdet's, it builds the config's
validation dataset and averages over its first ``--num-images`` images.

With ``--shape`` no dataset is needed: the model runs once on a zero image of H x W (padded up to
the data preprocessor's ``pad_size_divisor``, as the preprocessor would pad a real image), through
the same forward mmdet's script counts (``mode='tensor'``) -- :func:`mmext.analysis.model_complexity`
-- and the result is printed in mmdet's format. This is how the README's SpineNet figures are
reproduced without COCO, e.g. ``--shape 640 640``. FLOPs count one multiply-add as one FLOP
(mmengine's counter).
"""
import argparse
import os.path as osp
import runpy
import sys

import mmdet
from mmengine.config import Config, DictAction

import mmext  # noqa: F401
from mmext.utils.launch import DatasetNotFoundError, check_data_paths

MMDET_GET_FLOPS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools',
                           'get_flops.py')


def parse_shape_args(argv):
    parser = argparse.ArgumentParser(description='FLOPs of a model at a given input size')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', required=True,
                        help='input H W (or one side)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value pairs')
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2) or min(args.shape) < 1:
        parser.error(f'--shape takes H W or one side (positive), got {args.shape}')
    return args


def padded(shape, divisor):
    return tuple(-(-s // divisor) * divisor for s in shape) if divisor else tuple(shape)


def flops_at_shape(argv):
    from mmengine.analysis.print_helper import _format_size

    from mmext.analysis import model_complexity
    args = parse_shape_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    shape = tuple(args.shape * 2 if len(args.shape) == 1 else args.shape)
    divisor = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1)
    pad_shape = padded(shape, divisor)
    result = model_complexity(cfg, pad_shape)
    line = '=' * 30
    if pad_shape != shape:
        print(f'{line}\nUse size divisor set input shape from {shape} to {pad_shape}')
    print(f'{line}\nCompute type: zero image of the given shape (no dataset)\n'
          f'Input shape: {pad_shape}\nFlops: {_format_size(int(result["flops"]))}\n'
          f'Params: {_format_size(int(result["params"]))}\n{line}')


if __name__ == '__main__':
    argv = sys.argv[1:]
    if '--shape' in argv:
        flops_at_shape(argv)
        sys.exit(0)
    if argv and not argv[0].startswith('-'):
        try:
            check_data_paths(Config.fromfile(argv[0]), phases=('val', ))
        except DatasetNotFoundError as e:
            sys.exit(f'error: {e}\n(or give --shape H W to count at a size without a dataset)')
    sys.argv[0] = MMDET_GET_FLOPS
    runpy.run_path(MMDET_GET_FLOPS, run_name='__main__')
