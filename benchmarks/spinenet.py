"""RetinaNet-SpineNet-49 vs MMDetection's RetinaNet-R50-FPN at 640, measured in one run.

    python benchmarks/spinenet.py [--size 640] [--threads 1 0] [--max-seconds 120] [--device cpu]
                                  [--processes 10]

Prints parameters, FLOPs (mmengine's counter, one multiply-add = one FLOP; the tensor forward
mmdet's get_flops counts) and the single-image inference speed ratio, timed as mmdet's
benchmark times it: ``model.test_step`` under ``torch.no_grad`` -- the data preprocessor
(normalise, pad) and ``predict`` with post-processing -- for both detectors interleaved until
the ratio's 95 % interval is within +-5 % or ``--max-seconds`` (``benchmarks/measure.py``), once
per thread count and once more with both models in channels-last; the whole measurement runs in
``--processes`` fresh processes (default 10) and each interval is over the processes, so it
includes the spread between processes. Both use their COCO configs
(80 classes) with random weights; nothing is downloaded. References:
SpineNet-49 85.4 B / 28.5 M in the paper (Table 3) (90-class head; 83.6 B / 28.31 M with 80 classes);
mmdet RetinaNet-R50-FPN at 640 measured 95.5 G / 37.97 M.
"""
import argparse

import torch
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.analysis import build_model, count_params, model_complexity, synthetic_batch
from measure import add_processes_argument, compare, use_processes

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


def predict_step(model, batch):
    @torch.no_grad()
    def step():
        model.test_step(batch)
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=640)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 0],
                        help='torch CPU thread counts (0 = all cores)')
    parser.add_argument('--max-seconds', type=float, default=120.0)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    add_processes_argument(parser)
    args = parser.parse_args()
    use_processes(args.processes)
    shape = (args.size, args.size)
    models = {}
    for name, cfg in MODELS.items():
        model = load(cfg).to(args.device).eval()
        c = model_complexity(model, shape)
        models[name] = model
        print(f'{name:28s} params {count_params(model) / 1e6:7.2f} M  FLOPs '
              f'{c["flops"] / 1e9:7.1f} G ({args.size}x{args.size})', flush=True)
    (a, b) = models
    print(f'ratio SpineNet-49 / R50-FPN: params '
          f'{count_params(models[a]) / count_params(models[b]):.3f}')
    batch = synthetic_batch(shape, args.device)
    default_threads = torch.get_num_threads()
    for layout in ('nchw', 'channels_last'):
        if layout == 'channels_last':
            for m in models.values():
                m.to(memory_format=torch.channels_last)
        for threads in (args.threads if args.device == 'cpu' else [0]):
            torch.set_num_threads(threads or default_threads)
            res = compare({k: predict_step(m, batch) for k, m in models.items()}, ref=b,
                          device=args.device, warmup=1, min_rounds=3,
                          max_seconds=args.max_seconds)
            r = res.ratios[a]
            print(f'{layout}, {torch.get_num_threads()} thread(s): {a} '
                  f'{1 / res.seconds[a]:.2f} img/s, {b} {1 / res.seconds[b]:.2f} img/s; '
                  f'speed ratio SpineNet / R50-FPN {r.mean:.2f}x [{r.low:.2f}, {r.high:.2f}] '
                  f'(95 %, {res.extent}{"" if res.converged else ", cap reached"})',
                  flush=True)


if __name__ == '__main__':
    main()
