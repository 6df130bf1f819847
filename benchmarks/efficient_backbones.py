"""Params, FLOPs and CPU images/s of efficient detection backbones at 320 and 512 px.

Compares, as detection backbones (the stride 8/16/32 features a detector's neck consumes, no
classifier):

* ESPNetv2, s = 2.0 (Mehta et al., CVPR 2019, arXiv:1811.11431) -- mmext ``ESPNetv2``;
* clcNet-A (Zhang, CVPR 2018, arXiv:1712.06145) -- mmext ``CLCNet``;
* MixNet-S (Tan & Le, BMVC 2019, arXiv:1907.09595) -- mmext ``MixNet``, skipped with a note
  when that module is not there;
* MobileNetV2 (Sandler et al., CVPR 2018) -- mmdet's ``MobileNetV2``, the SSDLite backbone.

FLOPs are mmengine's count (one multiply-add = one FLOP; BN included, as mmdet's get_flops).
Images/s: single-image inference under ``torch.no_grad()``, the median over ``--iters`` timed
runs after ``--warmup`` ones; the models are interleaved within each iteration so load from
other processes hits them alike.

    python benchmarks/efficient_backbones.py                 # ~1-2 min on 2 CPU cores
    python benchmarks/efficient_backbones.py --iters 30 --sizes 320 512 640 --threads 4
"""
import argparse
import statistics
import time

import torch
from mmengine.analysis import get_model_complexity_info

import mmext  # noqa: F401  (registers the backbones)
from mmext.analysis import count_params


def backbones():
    """name -> (builder, note). Builders return a detection backbone in eval mode."""
    from mmdet.models.backbones import MobileNetV2

    from mmext.models.backbones import CLCNet, ESPNetv2
    models = {
        'ESPNetv2-2.0': (lambda: ESPNetv2(2.0, out_indices=(2, 3, 4)), ''),
        'clcNet-A': (lambda: CLCNet('A', out_indices=(1, 2, 3)), ''),
    }
    try:
        from mmext.models.backbones.mixnet import MixNet
        models['MixNet-S'] = (lambda: MixNet('S', out_indices=(1, 2, 3)), '')
    except ImportError as e:  # written by another engineer; may be absent in a checkout
        models['MixNet-S'] = (None, f'skipped: mmext.models.backbones.mixnet not importable '
                                    f'({e})')
    # mmdet indices 2, 4, 7 = strides 8, 16, 32 (32, 96, 1280 channels)
    models['MobileNetV2 (mmdet)'] = (lambda: MobileNetV2(out_indices=(2, 4, 7)), '')
    return models


def complexity(model, size):
    with torch.no_grad():
        out = get_model_complexity_info(model, None, inputs=torch.zeros(1, 3, size, size),
                                        show_table=False, show_arch=False)
    return out['flops']


def images_per_second(models, size, iters, warmup):
    x = torch.rand(1, 3, size, size)
    times = {name: [] for name in models}
    with torch.no_grad():
        for it in range(warmup + iters):
            for name, model in models.items():
                t0 = time.perf_counter()
                model(x)
                if it >= warmup:
                    times[name].append(time.perf_counter() - t0)
    return {name: 1.0 / statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[320, 512])
    parser.add_argument('--iters', type=int, default=10, help='timed runs per model and size')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s own choice)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models, notes, channels = {}, {}, {}
    for name, (build, note) in backbones().items():
        if build is None:
            notes[name] = note
            continue
        model = build()
        model.eval()  # not chained: a train() override may not return self
        models[name] = model
        with torch.no_grad():
            channels[name] = [o.shape[1] for o in model(torch.zeros(1, 3, 64, 64))]

    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch 1, '
          f'median of {args.iters} runs')
    header = '| backbone | out channels (s8/16/32) | params (M) | ' + ' | '.join(
        f'GFLOPs @{s} | img/s @{s}' for s in args.sizes) + ' |'
    print(header)
    print('|' + '---|' * (3 + 2 * len(args.sizes)))
    rows = {name: [f'{count_params(m) / 1e6:.2f}'] for name, m in models.items()}
    for size in args.sizes:
        speed = images_per_second(models, size, args.iters, args.warmup)
        for name, model in models.items():
            rows[name] += [f'{complexity(model, size) / 1e9:.3f}', f'{speed[name]:.1f}']
    for name, cells in rows.items():
        print(f'| {name} | {"/".join(map(str, channels[name]))} | ' + ' | '.join(cells) + ' |')
    for name, note in notes.items():
        print(f'| {name} | {note} |')


if __name__ == '__main__':
    main()
