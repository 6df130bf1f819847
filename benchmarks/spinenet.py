"""RetinaNet-SpineNet-49 vs MMDetection's RetinaNet-R50-FPN at 640, measured in one run.

    python benchmarks/spinenet.py [--size 640] [--iters 5] [--device cpu]

Prints parameters, FLOPs (mmengine's counter, one multiply-add = one FLOP; the tensor forward
mmdet's get_flops counts) and single-image inference images/s (``mode='predict'``, with
post-processing) of both detectors, and the ratios SpineNet / R50-FPN. Both use their COCO
configs (80 classes) with random weights; nothing is downloaded. References:
SpineNet-49 85.4 B / 28.5 M in the paper (Table 3) (90-class head; 83.6 B / 28.31 M with 80 classes);
mmdet RetinaNet-R50-FPN at 640 measured 95.5 G / 37.97 M.
"""
import argparse

import torch
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.analysis import build_model, count_params, inference_speed, model_complexity

MODELS = {
    'RetinaNet-SpineNet-49': 'configs/spinenet_retina.py',
    'RetinaNet-R50-FPN (mmdet)': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
}


def load(cfg_path):
    if cfg_path.startswith('mmdet::'):
        import os.path as osp

        import mmdet
        cfg_path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                            cfg_path[len('mmdet::'):])
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.pop('init_cfg', None)  # no pretrained download
    from mmext.utils.launch import adapt_cfg_to_device
    return build_model(adapt_cfg_to_device(cfg))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=640)
    parser.add_argument('--iters', type=int, default=5, help='timed images per model')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    shape = (args.size, args.size)
    rows = {}
    for name, cfg in MODELS.items():
        model = load(cfg)
        c = model_complexity(model, shape)
        fps = inference_speed(model, shape, num_iters=args.iters, num_warmup=1,
                              device=args.device)
        rows[name] = (count_params(model) / 1e6, c['flops'] / 1e9, fps)
        print(f'{name:28s} params {rows[name][0]:7.2f} M  FLOPs {rows[name][1]:7.1f} G  '
              f'{fps:6.2f} img/s ({args.device}, {args.size}x{args.size})', flush=True)
    (a, b) = rows.values()
    print(f'ratio SpineNet-49 / R50-FPN: params {a[0] / b[0]:.3f}  FLOPs {a[1] / b[1]:.3f}  '
          f'speed {a[2] / b[2]:.3f}x')


if __name__ == '__main__':
    main()
