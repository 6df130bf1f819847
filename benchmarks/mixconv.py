"""Forward+backward time of mmext's MixConv2d vs timm's MixedConv2d on MixNet-M's layer shapes.

Every depthwise MixConv of MixNet-M at 224x224 (Tan & Le, BMVC 2019, arXiv:1907.09595; shapes
read from the built model, duplicates removed) is timed for

* ``mmext``  -- :class:`mmext.models.layers.MixConv2d`,
* ``timm``   -- ``timm.layers.MixedConv2d`` with the same weights (outputs checked equal),
* ``dw-max`` -- one plain depthwise conv with the layer's largest kernel, for scale (what
  MixConv saves against "just use the big kernel everywhere"),

in NCHW and in channels-last layout, the variants interleaved so that load from other processes
hits all of them alike. Ratios > 1 mean mmext is faster. Unless ``--quick``, the whole MixNet-M
(training mode, with the classification head) is also timed against timm's ``mixnet_m``.

    python benchmarks/mixconv.py            # ~1 min on 2 CPU cores
    python benchmarks/mixconv.py --quick    # ~20 s: 3 timed iterations, batch 2
    python benchmarks/mixconv.py --iters 20 --batch 16 --device cuda
"""
import argparse
import math
import time

import torch
import torch.nn as nn

from mmext.models.backbones.mixnet import MixNet
from mmext.models.layers.mixconv import MixConv2d


def mixnet_m_shapes(size=224):
    """(channels, kernels, stride, input size) of every depthwise MixConv in MixNet-M with more
    than one kernel (single-kernel ones are the same ``nn.Conv2d`` in both libraries)."""
    model = MixNet('M').eval()
    shapes = []

    def hook(module, inputs):
        key = (module.in_channels, module.kernel_size, module.stride, inputs[0].shape[-1])
        if key not in shapes:
            shapes.append(key)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()
               if isinstance(m, MixConv2d) and m.depthwise and len(m.kernel_size) > 1]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return shapes


def timed(fns, x, iters, warmup, device):
    """Median seconds per forward+backward of each variant (the median resists the spikes
    other processes cause on a shared machine)."""
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    times = {k: [] for k in fns}
    for it in range(warmup + iters):
        for name, fn in fns.items():  # interleaved: background load hits every variant alike
            x.grad = None
            sync()
            t0 = time.perf_counter()
            fn(x).sum().backward()
            sync()
            if it >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=5, help='timed iterations per variant')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--quick', action='store_true',
                        help='3 iterations, batch 2, no whole-network timing')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (default 1: steadier on a shared machine)')
    args = parser.parse_args()
    if args.quick:
        args.iters, args.batch = 3, 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from timm.layers import MixedConv2d

    torch.manual_seed(0)
    dev = args.device
    print(f'device {dev}, batch {args.batch}, median of {args.iters} timed iterations, '
          f'{torch.get_num_threads()} threads; times in ms (forward + backward)')
    header = (f'{"C":>5} {"kernels":>13} {"s":>2} {"HW":>4} | {"layout":>6} | {"mmext":>7} '
              f'{"timm":>7} {"dw-max":>7} | {"timm/mmext":>10} {"dwmax/mmext":>11}')
    print(header)
    print('-' * len(header))
    ratios = {'nchw': [], 'nhwc': []}
    dw_ratios = []
    for c, kernels, stride, hw in mixnet_m_shapes():
        ours = MixConv2d(c, c, list(kernels), stride=stride).to(dev)
        ref = MixedConv2d(c, c, list(kernels), stride=stride, depthwise=True).to(dev)
        for i, conv in enumerate(ours.convs):
            ref[str(i)].weight.data.copy_(conv.weight.data)
        kmax = max(kernels)
        big = nn.Conv2d(c, c, kmax, stride, kmax // 2, groups=c, bias=False).to(dev)
        for layout in ('nchw', 'nhwc'):
            x = torch.randn(args.batch, c, hw, hw, device=dev)
            if layout == 'nhwc':
                x = x.contiguous(memory_format=torch.channels_last)
            x.requires_grad_()
            with torch.no_grad():
                torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
            t = timed(dict(mmext=ours, timm=ref, big=big), x, args.iters, args.warmup, dev)
            r, rb = t['timm'] / t['mmext'], t['big'] / t['mmext']
            ratios[layout].append(r)
            dw_ratios.append(rb)
            print(f'{c:>5} {".".join(map(str, kernels)):>13} {stride:>2} {hw:>4} | {layout:>6} | '
                  f'{t["mmext"] * 1e3:7.2f} {t["timm"] * 1e3:7.2f} {t["big"] * 1e3:7.2f} | '
                  f'{r:10.2f}x {rb:10.2f}x')

    def gmean(v):
        return math.exp(sum(map(math.log, v)) / len(v))

    print('-' * len(header))
    for layout, v in ratios.items():
        print(f'geometric mean timm/mmext ({layout}): {gmean(v):.2f}x')
    print(f'geometric mean dw-max/mmext: {gmean(dw_ratios):.2f}x '
          f'(a single depthwise conv with the largest kernel, for scale)')

    if not args.quick:
        import timm
        x = torch.randn(args.batch, 3, 224, 224, device=dev, requires_grad=True)
        ours = MixNet('M', num_classes=1000).to(dev).train()
        ours_cl = MixNet('M', num_classes=1000, channels_last=True).to(dev).train()
        ref = timm.create_model('mixnet_m', pretrained=False).to(dev).train()
        t = timed(dict(mmext=ours, mmext_cl=ours_cl, timm=ref), x, max(1, args.iters // 2), 1,
                  dev)
        print(f'MixNet-M training step at 224, batch {args.batch}: '
              f'mmext {t["mmext"] * 1e3:.0f} ms, timm {t["timm"] * 1e3:.0f} ms '
              f'(timm/mmext {t["timm"] / t["mmext"]:.2f}x); '
              f'mmext channels_last=True {t["mmext_cl"] * 1e3:.0f} ms '
              f'({t["mmext"] / t["mmext_cl"]:.2f}x over NCHW)')


if __name__ == '__main__':
    main()
