"""Forward+backward time of mmext's MixConv2d vs timm's MixedConv2d on MixNet-M's layer shapes.

Every depthwise MixConv of MixNet-M at 224x224 (Tan & Le, BMVC 2019, arXiv:1907.09595; shapes
read from the built model, duplicates removed) is timed for

* ``mmext``  -- :class:`mmext.models.layers.MixConv2d` as built by default (``impl='auto'``,
  ``fast_backward=True``: the GEMM weight gradient of ``mmext/models/layers/depthwise_conv.py``
  on CPU/NCHW),
* ``split``  -- ``impl='split', fast_backward=False``: one conv per group with PyTorch's
  backward, the algorithm timm and the official code use,
* ``padded`` -- ``impl='padded'`` (one depthwise conv, kernels zero-padded to the largest),
* ``timm``   -- ``timm.layers.MixedConv2d`` with the same weights (outputs checked equal),

in NCHW and channels-last, with 1 thread and with all threads, by ``benchmarks/measure.py``:
interleaved rounds until the ratio's 95 % interval is within +-5 % (or the per-layer cap),
warm-up excluded. Ratios ``timm / variant`` > 1 mean mmext is faster. Unless ``--quick``, the
whole MixNet-M training step (with the classification head) is also compared with timm's
``mixnet_m``, and for attribution with either of mmext's two changes undone (PyTorch's depthwise
backward, ``fast_backward=False``; one conv per group in the 2-group 1x1 layers,
``GroupedPointwiseConv2d(impl='split')``). ``--backward-breakdown`` times, per kernel group of
those layers, PyTorch's depthwise weight and input gradients against the GEMM and
transposed-conv ones that ``fast_backward`` uses: the profile that says where MixConv's time
goes.

    python benchmarks/mixconv.py                 # about 3-10 min per process on 2 CPU cores
    python benchmarks/mixconv.py --quick         # layers only, 1 thread (3 min, 10 processes)
    python benchmarks/mixconv.py --quick --threads 0  # the same at all threads
    python benchmarks/mixconv.py --threads 1 --share-only  # MixConvs' share of the step (Amdahl)
    python benchmarks/mixconv.py --network-only  # the whole MixNet-M step only, 1 and all threads
    python benchmarks/mixconv.py --backward-breakdown --threads 1  # where the backward's time goes
    python benchmarks/mixconv.py --pointwise --threads 1 0 --max-seconds 5  # grouped 1x1 layers
    python benchmarks/mixconv.py --device cuda   # the same on a GPU (CUDA-synchronised timer)

Every mode takes ``--processes K`` (default 10): the whole measurement runs in K fresh processes
one after another and each interval is over the K processes' mean ratios, so it includes the
spread between processes (oneDNN's kernel choice and memory layout differ from one process to
the next; see ``benchmarks/measure.py``); the run takes K times as long. ``--processes 1`` gives
the within-process intervals of earlier versions: with them two ``--quick`` runs disagreed
beyond their intervals on one shape of 8, with 5 processes on 2 of 16; with 10, runs minutes
apart agree, but on a shared VM the 1-thread ratio also drifts with the host's load over tens
of minutes, which no one run covers (the model card has five runs). The share of the step
(``--share-only``, and after the step) is the parent process's own measurement.
"""
import argparse
import math

import torch

from mmext.models.backbones.mixnet import MixNet
from mmext.models.layers.depthwise_conv import weight_grad
from mmext.models.layers.mixconv import GroupedPointwiseConv2d, MixConv2d, split_channels
from measure import add_processes_argument, compare, in_worker, mean_ci, use_processes


def mixnet_m_shapes(size=224):
    """(channels, kernels, stride, input size) of every depthwise MixConv in MixNet-M with more
    than one kernel (single-kernel ones are the same ``nn.Conv2d`` in both libraries)."""
    return layer_shapes(
        lambda m: isinstance(m, MixConv2d) and m.depthwise and len(m.kernel_size) > 1,
        lambda m, hw: (m.in_channels, m.kernel_size, m.stride, hw), size)


def mixnet_m_pointwise_shapes(size=224):
    """(in, out, groups, input size) of every 1x1 conv of MixNet-M split into groups (the
    expansions and projections of the official ``a1.1``/``p1.1`` blocks)."""
    return layer_shapes(
        lambda m: isinstance(m, GroupedPointwiseConv2d) and len(m.convs) > 1,
        lambda m, hw: (m.in_channels, m.out_channels, len(m.convs), hw), size)


def layer_shapes(select, key, size):
    """``key(module, input size)`` of every module of MixNet-M that ``select`` picks, in call
    order, duplicates removed (read by forward pre-hooks during one forward pass)."""
    model = MixNet('M').eval()
    shapes = []

    def hook(module, inputs):
        k = key(module, inputs[0].shape[-1])
        if k not in shapes:
            shapes.append(k)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if select(m)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return shapes


def pointwise_variants(cin, cout, groups, dev):
    from timm.layers import MixedConv2d
    mmext = GroupedPointwiseConv2d(cin, cout, groups).to(dev)
    split = GroupedPointwiseConv2d(cin, cout, groups, impl='split').to(dev)
    split.load_state_dict(mmext.state_dict())
    ref = MixedConv2d(cin, cout, [1] * groups, depthwise=False).to(dev)
    for i, conv in enumerate(mmext.convs):
        ref[str(i)].weight.data.copy_(conv.weight.data)
    return dict(timm=ref, mmext=mmext, split=split), mmext.impl


def layer_variants(c, kernels, stride, dev):
    from timm.layers import MixedConv2d
    mmext = MixConv2d(c, c, list(kernels), stride=stride).to(dev)
    split = MixConv2d(c, c, list(kernels), stride=stride, impl='split',
                      fast_backward=False).to(dev)
    padded = MixConv2d(c, c, list(kernels), stride=stride, impl='padded').to(dev)
    ref = MixedConv2d(c, c, list(kernels), stride=stride, depthwise=True).to(dev)
    for m in (split, padded):
        m.load_state_dict(mmext.state_dict())
    for i, conv in enumerate(mmext.convs):
        ref[str(i)].weight.data.copy_(conv.weight.data)
    return dict(timm=ref, mmext=mmext, split=split, padded=padded), mmext.impl


def fwd_bwd(module, x):
    def step():
        x.grad = None
        module(x).sum().backward()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, nargs='+', default=None,
                        help='torch CPU thread counts to measure (0 = all cores); default 1 and '
                             'all, with --quick 1')
    parser.add_argument('--max-seconds', type=float, default=20.0,
                        help='cap per layer shape and layout')
    parser.add_argument('--quick', action='store_true',
                        help='1 thread, 5 s per shape, no whole-network timing')
    parser.add_argument('--share-only', action='store_true',
                        help='only the share of the MixNet-M step spent in MixConvs (Amdahl)')
    parser.add_argument('--network-only', action='store_true',
                        help='only the whole MixNet-M training step vs timm (no layer table)')
    parser.add_argument('--backward-breakdown', action='store_true',
                        help='only PyTorch vs GEMM/transposed-conv depthwise gradients per group')
    parser.add_argument('--pointwise', action='store_true',
                        help="only MixNet-M's grouped 1x1 layers: one grouped conv vs per group")
    add_processes_argument(parser)
    args = parser.parse_args()
    if args.quick and args.network_only:
        parser.error('--quick skips the network that --network-only measures: give one of them')
    if not args.share_only:  # the share is no comparison: nothing to pool
        use_processes(args.processes)
    if args.quick:
        args.max_seconds = 5.0
    args.threads = thread_counts(args.threads, args.quick)
    dev = args.device
    default_threads = torch.get_num_threads()
    for threads in (args.threads if dev == 'cpu' else [0]):
        torch.set_num_threads(threads or default_threads)
        if args.share_only:
            print_share(args, dev)
            continue
        if args.backward_breakdown:
            measure_backward(args, dev)
            continue
        if args.pointwise:
            measure_pointwise(args, dev)
            continue
        if not args.network_only:
            measure_layers(args, dev)
        if not args.quick:
            measure_network(args, dev)


def thread_counts(threads, quick):
    """The thread counts to measure: as given, else 1 with ``--quick`` and 1 and all without."""
    if threads is not None:
        return list(threads)
    return [1] if quick else [1, 0]


def measure_layers(args, dev):
    torch.manual_seed(0)
    print(f'\ndevice {dev}, {torch.get_num_threads()} thread(s), batch {args.batch}; '
          'forward + backward; ratio = timm / variant [95 % interval], > 1: mmext faster')
    print('| C | kernels | s | HW | layout | auto picks | timm ms | timm/mmext | timm/split | '
          'timm/padded | timed |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    # per (variant, layout): per shape, each process's mean log ratio
    logs = {(name, layout): [] for name in ('mmext', 'split', 'padded')
            for layout in ('nchw', 'nhwc')}
    for c, kernels, stride, hw in mixnet_m_shapes():
        fns, auto = layer_variants(c, kernels, stride, dev)
        for layout in ('nchw', 'nhwc'):
            x = layer_input(args.batch, c, hw, layout, dev)
            res = time_against_timm(fns, x, args, logs, layout)
            r = res.ratios
            print(f'| {c} | {".".join(map(str, kernels))} | {stride} | {hw} | {layout} | {auto} | '
                  f'{res.seconds["timm"] * 1e3:.2f} | {fmt(r["mmext"])} | {fmt(r["split"])} | '
                  f'{fmt(r["padded"])} | {res.extent}{"" if res.converged else " (cap)"} |')
    print_geometric_means(logs)


def measure_pointwise(args, dev):
    """MixNet-M's 2-group 1x1 layers: mmext's default (one grouped conv) and one conv per
    group, against timm's ``MixedConv2d``; forward + backward, both layouts."""
    torch.manual_seed(0)
    print(f'\ndevice {dev}, {torch.get_num_threads()} thread(s), batch {args.batch}; grouped 1x1 '
          'layers, forward + backward; ratio = timm / variant [95 % interval]')
    print('| in | out | groups | HW | layout | auto picks | timm ms | timm/mmext | timm/split | '
          'timed |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    logs = {(name, layout): [] for name in ('mmext', 'split') for layout in ('nchw', 'nhwc')}
    for cin, cout, groups, hw in mixnet_m_pointwise_shapes():
        fns, auto = pointwise_variants(cin, cout, groups, dev)
        for layout in ('nchw', 'nhwc'):
            x = layer_input(args.batch, cin, hw, layout, dev)
            res = time_against_timm(fns, x, args, logs, layout)
            print(f'| {cin} | {cout} | {groups} | {hw} | {layout} | {auto} | '
                  f'{res.seconds["timm"] * 1e3:.2f} | {fmt(res.ratios["mmext"])} | '
                  f'{fmt(res.ratios["split"])} | {res.extent}'
                  f'{"" if res.converged else " (cap)"} |')
    print_geometric_means(logs)


def layer_input(batch, channels, hw, layout, dev):
    x = torch.randn(batch, channels, hw, hw, device=dev)
    if layout == 'nhwc':
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_()


def time_against_timm(fns, x, args, logs, layout):
    """Checks that every variant's output equals timm's, times forward + backward of all of
    them interleaved, and appends each variant's per-process log ratios to ``logs``."""
    with torch.no_grad():
        for name in fns:
            torch.testing.assert_close(fns[name](x), fns['timm'](x), rtol=1e-5, atol=1e-5)
    res = compare({k: fwd_bwd(m, x) for k, m in fns.items()}, ref='timm', device=str(x.device),
                  max_seconds=args.max_seconds)
    for name in fns:
        if name != 'timm':
            logs[name, layout].append(res.process_logs('timm', name))
    return res


def print_geometric_means(logs):
    """Per (variant, layout): the geometric mean ratio over the shapes, its interval over
    processes, and the range of the shapes' ratios (``logs``: per shape, the processes' mean
    log ratios)."""
    for (name, layout), per_shape in logs.items():
        shape_means = [sum(p) / len(p) for p in per_shape]
        # one geometric mean over the shapes per process; the interval is over the processes
        per_process = [sum(v) / len(v) for v in zip(*per_shape)]
        c = mean_ci(per_process)
        spread = (f' [{math.exp(c.low):.2f}, {math.exp(c.high):.2f}] over {c.n} processes'
                  if c.n > 1 else '')
        print(f'geometric mean over the layers, {layout}, timm / {name}: '
              f'{math.exp(c.mean):.2f}x{spread} (shapes {math.exp(min(shape_means)):.2f}-'
              f'{math.exp(max(shape_means)):.2f}x)')


def measure_network(args, dev):
    import timm
    x = torch.randn(args.batch, 3, 224, 224, device=dev, requires_grad=True)
    # timm in channels-last too: the same memory-format switch, so that mmext's channels_last
    # figure is not a comparison of layouts
    timm_cl = torch.nn.Sequential(ChannelsLast(), timm.create_model('mixnet_m', pretrained=False))
    # for attribution, mmext with one of its two speed-ups undone: PyTorch's depthwise backward
    # (fast_backward=False), or one conv per group in the 2-group 1x1 layers (impl='split'; in
    # both layouts, since per layer the grouped conv loses in channels-last at 1 thread)
    mmext_pt, mmext_gs = MixNet('M', num_classes=1000), MixNet('M', num_classes=1000)
    mmext_cl_gs = MixNet('M', num_classes=1000, channels_last=True)
    for m in mmext_pt.modules():
        if isinstance(m, MixConv2d):
            m.fast_backward = False
    for m in [*mmext_gs.modules(), *mmext_cl_gs.modules()]:
        if isinstance(m, GroupedPointwiseConv2d):
            m.impl = 'split'
    nets = dict(timm=timm.create_model('mixnet_m', pretrained=False),
                mmext=MixNet('M', num_classes=1000),
                mmext_pt=mmext_pt,
                mmext_gs=mmext_gs,
                mmext_cl=MixNet('M', num_classes=1000, channels_last=True),
                mmext_cl_gs=mmext_cl_gs,
                timm_cl=timm_cl.to(memory_format=torch.channels_last))
    fns = {k: fwd_bwd(m.to(dev).train(), x) for k, m in nets.items()}
    res = compare(fns, ref='timm', device=dev, warmup=1, min_rounds=3,
                  max_seconds=6 * args.max_seconds)
    r = res.ratios
    print(f'MixNet-M training step (forward + backward) at 224, batch {args.batch}, '
          f'{torch.get_num_threads()} thread(s): timm {res.seconds["timm"] * 1e3:.0f} ms; '
          f'timm / mmext {fmt(r["mmext"])} (fast_backward=False: {fmt(r["mmext_pt"])}; '
          f'split 1x1 groups: {fmt(r["mmext_gs"])}), '
          f'timm / mmext channels_last=True '
          f'{fmt(r["mmext_cl"])}, timm / timm channels-last {fmt(r["timm_cl"])}; both in '
          f'channels-last: timm / mmext {fmt(res.ratio("timm_cl", "mmext_cl"))} (split 1x1 '
          f'groups: {fmt(res.ratio("timm_cl", "mmext_cl_gs"))}) '
          f'({res.extent}{"" if res.converged else ", cap reached"})')
    if not in_worker():  # the share is the parent's own measurement, not pooled
        print_share(args, dev, nets['mmext'], x)


def measure_backward(args, dev):
    """PyTorch's depthwise weight / input gradient vs the GEMM / transposed-conv ones, per
    kernel group of MixNet-M's multi-kernel MixConvs (batch ``--batch``, both layouts)."""
    import torch.nn.functional as F
    print(f'\ndevice {dev}, {torch.get_num_threads()} thread(s), batch {args.batch}; one '
          'depthwise group; ratio = PyTorch / replacement [95 % interval], > 1: replacement faster')
    print('| C | k | s | HW | layout | forward ms | weight grad ms | / GEMM | input grad ms | '
          '/ conv_transpose2d | both in one call / the two separately |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    seen = set()
    for c, kernels, s, hw in mixnet_m_shapes():
        for k, ci in zip(kernels, split_channels(c, len(kernels))):
            if (ci, k, s, hw) in seen:
                continue
            seen.add((ci, k, s, hw))
            for layout in ('nchw', 'nhwc'):
                x = torch.randn(args.batch, ci, hw, hw, device=dev)
                w = torch.randn(ci, 1, k, k, device=dev)
                if layout == 'nhwc':
                    x = x.contiguous(memory_format=torch.channels_last)
                p = k // 2
                g = torch.randn_like(F.conv2d(x, w, None, s, p, 1, ci))
                extra = [(n + 2 * p - k) % s for n in x.shape[-2:]]  # output_padding

                def aten(mask, g=g, x=x, w=w, s=s, p=p, ci=ci):
                    return lambda: torch.ops.aten.convolution_backward(
                        g, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], ci, mask)
                fns = dict(fwd=lambda x=x, w=w, s=s, p=p, ci=ci: F.conv2d(x, w, None, s, p, 1, ci),
                           w_pt=aten([False, True, False]),
                           w_gemm=lambda x=x, g=g, k=k, s=s, p=p: weight_grad(x, g, k, s, p, 1),
                           x_pt=aten([True, False, False]),
                           x_tconv=lambda g=g, w=w, s=s, p=p, ci=ci, e=extra:
                           F.conv_transpose2d(g, w, None, s, p, e, ci),
                           # PyTorch's one backward call vs the transposed conv + its weight
                           # gradient: what the new path costs where the GEMM does not run
                           both_pt=aten([True, True, False]),
                           both_split=lambda g=g, w=w, s=s, p=p, ci=ci, e=extra, wg=aten(
                               [False, True, False]): (F.conv_transpose2d(g, w, None, s, p, e, ci),
                                                       wg()))
                res = compare(fns, ref='w_pt', device=dev, max_seconds=args.max_seconds)
                sec = res.seconds
                print(f'| {ci} | {k} | {s} | {hw} | {layout} | {sec["fwd"] * 1e3:.2f} | '
                      f'{sec["w_pt"] * 1e3:.2f} | {fmt(res.ratios["w_gemm"])} | '
                      f'{sec["x_pt"] * 1e3:.2f} | {fmt(res.ratio("x_pt", "x_tconv"))} | '
                      f'{fmt(res.ratio("both_pt", "both_split"))} |')


def print_share(args, dev, model=None, x=None):
    if model is None:
        model = MixNet('M', num_classes=1000).to(dev).train()
        x = torch.randn(args.batch, 3, 224, 224, device=dev, requires_grad=True)
    shares = [mixconv_share(model, x)[0] for _ in range(5)]
    share = sum(shares) / len(shares)
    print(f'share of the mmext MixNet-M step (224, batch {args.batch}, '
          f'{torch.get_num_threads()} thread(s)) spent in its multi-kernel MixConvs, forward + '
          f'backward, module hooks, 5 x 3 steps: {100 * share:.0f} % (range '
          f'{100 * min(shares):.0f}-{100 * max(shares):.0f} %), so even a free MixConv makes the '
          f'step at most {1 / (1 - share):.2f}x faster (Amdahl)')


def mixconv_share(model, x, repeats=3):
    """Fraction of a training step's wall time spent in the multi-kernel depthwise MixConvs
    (forward + backward), timed by module hooks around each call: by Amdahl's law no MixConv,
    however fast, makes the step more than ``1 / (1 - share)`` times faster. The hooks time
    wall-clock intervals, valid where the work is synchronous (CPU; on CUDA they synchronise)."""
    import time
    layers = [m for m in model.modules()
              if isinstance(m, MixConv2d) and m.depthwise and len(m.kernel_size) > 1]
    spent, start = [0.0], {}

    def sync():
        if x.is_cuda:
            torch.cuda.synchronize()

    def begin(module, *_):
        sync()
        start[id(module)] = time.perf_counter()

    def end(module, *_):
        sync()
        spent[0] += time.perf_counter() - start.pop(id(module))

    step = fwd_bwd(model, x)
    step()  # warm-up, untimed
    handles = []
    for m in layers:
        handles += [m.register_forward_pre_hook(begin), m.register_forward_hook(end),
                    m.register_full_backward_pre_hook(begin), m.register_full_backward_hook(end)]
    total = 0.0
    try:
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            total += time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
    return spent[0] / total, len(layers)


class ChannelsLast(torch.nn.Module):
    """Converts the input to channels-last (what ``MixNet(channels_last=True)`` does first)."""

    def forward(self, x):
        return x.contiguous(memory_format=torch.channels_last)


def fmt(r):
    return f'{r.mean:.2f}x [{r.low:.2f}, {r.high:.2f}]'


if __name__ == '__main__':
    main()
