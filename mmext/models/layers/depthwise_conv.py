"""A depthwise conv whose CPU backward avoids oneDNN's slow depthwise weight gradient.

Profiling MixConv's forward+backward on CPU (``benchmarks/mixconv.py --backward-breakdown``)
shows where its time goes: PyTorch's weight gradient of a depthwise conv with a kernel of 5x5 or
more takes 4-15x the time of the forward conv of the same multiply-adds in NCHW and 4-14x in
channels-last (3x3 kernels have a fast path; larger ones do not), and dominates the layer.
timm's ``MixedConv2d`` and the per-group MixConv both pay this.

:func:`depthwise_conv2d` runs the same forward (``F.conv2d``, so outputs are bit-identical) and
computes the backward with other kernels:

* input gradient: ``F.conv_transpose2d`` with the same weight (the adjoint of the conv);
* weight gradient: for every kernel row ``i``, one batched GEMM per channel of the input rows
  that row reads (``i * dilation + h * stride``) against the output gradient, over tiles of
  ``TILE`` output columns; the kernel taps are the diagonals of each product
  (``grad_w[c, i, j] = sum M[c, tile, j * dilation + w * stride, w]``). It spends about
  ``((TILE - 1) * stride + (k - 1) * dilation + 1) / k`` times the multiply-adds of the direct
  sum, but in GEMMs, which run an order of magnitude faster than the direct kernel;
* everything else (3x3 kernels, which have a fast weight-gradient kernel, and the shapes below
  where the GEMM lost) keeps PyTorch's conv and its backward.

The gradients equal PyTorch's up to float rounding (another summation order; tested to 1e-10
relative in float64). Where the path is taken was measured (``benchmarks/mixconv.py
--backward-breakdown``, CPU, 1 thread, every kernel group of MixNet-M's MixConvs, three runs): CPU,
float32/64, grad enabled and not tracing (a traced graph, FLOP counting and export see a plain
``F.conv2d``), and a shape where the GEMM weight gradient is faster (:func:`gemm_wins`): it was
1.1x-2.8x faster than PyTorch's for every kernel >= 5 in NCHW, except the 5x5 group at 112x112 in
one run of three (0.86x; 1.16x and 1.19x in the others); in channels-last, where oneDNN's weight
gradient is about twice as fast as in NCHW and the GEMMs first need the input transposed to
channel-major, it won only on small maps (0.97x-2.4x at 7x7, and at 14x14 with kernels >= 7) and
lost elsewhere (0.5x-1.0x). The input gradient by ``conv_transpose2d`` was 1.0x-2.6x faster than
PyTorch's alone, but the two separate calls cost 0.93x-1.09x of PyTorch's one backward call (the
benchmark's last column) before the autograd Function's own overhead, so the path is not worth it
where the GEMM does not run.
"""
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# output columns per GEMM tile: 16 was the fastest of 4, 8, 16 and untiled on MixNet-M's
# kernel >= 5 layer shapes (CPU, 1 thread, NCHW; 0.47x of PyTorch's weight-gradient time summed)
TILE = 16
# below this many output elements (N * C * Ho * Wo) the extra calls cost more than they save
MIN_ELEMENTS = 4096


def use_fast_backward(x: torch.Tensor) -> bool:
    """Whether :func:`depthwise_conv2d`'s backward applies to this input (see module doc)."""
    return (x.device.type == 'cpu' and x.dtype in (torch.float32, torch.float64)
            and x.dim() == 4 and torch.is_grad_enabled() and not torch.jit.is_tracing()
            and not torch.jit.is_scripting())


def is_nhwc(x: torch.Tensor) -> bool:
    """Channels-last strides, also for a channel slice of a channels-last tensor (which is
    contiguous in neither format)."""
    return x.dim() == 4 and x.shape[1] > 1 and x.stride(1) < x.stride(3)


def gemm_wins(k: int, h: int, w: int, nhwc: bool) -> bool:
    """Whether the GEMM weight gradient was measured faster than PyTorch's for a ``k x k``
    depthwise conv on an ``h x w`` input (module docstring)."""
    if k < 5:
        return False
    return not nhwc or h * w <= 49 or (k >= 7 and h * w <= 196)


def weight_grad(x, grad, k, stride, padding, dilation, tile=TILE):
    """d(loss)/d(weight) of a depthwise ``k x k`` conv (square kernel, symmetric padding),
    (C, 1, k, k), by tiled GEMMs (module docstring)."""
    n, c, h, w = x.shape
    ho, wo = grad.shape[-2:]
    s, d = stride, dilation
    tile = min(tile, wo)
    tiles = -(-wo // tile)
    tw = (tile - 1) * s + (k - 1) * d + 1  # input columns one tile of outputs reads
    # pad (or crop) to exactly the rows/columns the taps read; rows a multiple of the stride
    hn = -(-((k - 1) * d + (ho - 1) * s + 1) // s) * s
    wn = (tiles - 1) * tile * s + tw
    xp = F.pad(x, [padding, wn - w - padding, padding, hn - h - padding])
    # (C, tiles, s, hn / s, N, tw): rows phase-major, so the rows of one kernel row are a block
    xt = xp.reshape(n, c, hn // s, s, wn).unfold(4, tw, tile * s)
    xt = xt.permute(1, 4, 3, 2, 0, 5).contiguous()
    gt = F.pad(grad, [0, tiles * tile - wo]).reshape(n, c, ho, tiles, tile)
    gt = gt.permute(1, 3, 2, 0, 4).reshape(c * tiles, ho * n, tile)
    # one product per kernel row into one buffer, then one reduction for all taps: a sum per
    # row cost more Python calls and small, badly threaded reductions (the row-by-row version
    # was slower on all of MixNet-M's kernel >= 5 groups but the 112x112 ones, at 1 and 2 threads)
    prod = x.new_empty(k, c * tiles, tw, tile)
    for i in range(k):
        r = i * d
        rows = xt[:, :, r % s, r // s:r // s + ho].reshape(c * tiles, ho * n, tw)
        torch.bmm(rows.transpose(1, 2), gt, out=prod[i])
    # taps[i, c, j, tile, o] = prod[i, c * tiles + tile, j * d + o * s, o]
    taps = prod.as_strided((k, c, k, tiles, tile), (c * tiles * tw * tile, tiles * tw * tile,
                                                    d * tile, tw * tile, s * tile + 1))
    return taps.sum((3, 4)).transpose(0, 1).unsqueeze(1)


class _DepthwiseConv2d(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, bias is not None)
        return F.conv2d(x, weight, bias, stride, padding, dilation, x.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        s, p, d, has_bias = ctx.conf
        c, k = weight.shape[0], weight.shape[-1]
        # keep the layout the forward ran in: a conversion here would cost a copy per layer
        grad = grad.contiguous(memory_format=torch.channels_last if is_nhwc(x)
                               else torch.contiguous_format)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            # the transposed conv's output size is ambiguous for stride > 1: say which
            extra = [(size + 2 * p - d * (k - 1) - 1) % s for size in x.shape[-2:]]
            gx = F.conv_transpose2d(grad, weight, None, s, p, extra, c, d)
        if ctx.needs_input_grad[1]:
            if grad.numel() >= MIN_ELEMENTS:
                gw = weight_grad(x, grad, k, s, p, d).to(weight.dtype)
            else:
                gw = torch.ops.aten.convolution_backward(
                    grad, x, weight, None, [s, s], [p, p], [d, d], False, [0, 0], c,
                    [False, True, False])[1]
        if has_bias and ctx.needs_input_grad[2]:
            gb = grad.sum((0, 2, 3))
        return gx, gw, gb, None, None, None


def takes_fast_path(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`depthwise_conv2d` runs the GEMM backward for this input and weight:
    :func:`use_fast_backward`, a gradient to compute, and a shape :func:`gemm_wins` names."""
    return (use_fast_backward(x) and (x.requires_grad or weight.requires_grad)
            and gemm_wins(weight.shape[-1], x.shape[-2], x.shape[-1], is_nhwc(x)))


def depthwise_conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0,
                     dilation: int = 1, fallback=None):
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups=C)`` for a square
    depthwise kernel (C, 1, k, k) with symmetric int padding; the GEMM backward where
    :func:`takes_fast_path` says so, elsewhere ``fallback(x)`` (e.g. the ``nn.Conv2d`` holding
    ``weight``, so that its hooks run) or the plain conv.

    Raises:
        ValueError: ``weight`` is not a square depthwise kernel for ``x``'s channels.
    """
    c = x.shape[1] if x.dim() == 4 else None
    if (x.dim() != 4 or weight.dim() != 4 or tuple(weight.shape[:2]) != (c, 1)
            or weight.shape[-2] != weight.shape[-1]):
        raise ValueError(f'depthwise_conv2d: weight of shape {tuple(weight.shape)} for input '
                         f'{tuple(x.shape)}; expected an (N, C, H, W) input and a (C, 1, k, k) '
                         f'weight with C = the input channels')
    if takes_fast_path(x, weight):
        return _DepthwiseConv2d.apply(x, weight, bias, stride, padding, dilation)
    if fallback is not None:
        return fallback(x)
    return F.conv2d(x, weight, bias, stride, padding, dilation, c)
