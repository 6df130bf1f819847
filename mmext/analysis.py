"""Model complexity and throughput without a dataset.

:func:`model_complexity` counts exactly what mmdet's ``tools/analysis_tools/get_flops.py``
counts -- ``model.forward(inputs, data_samples, mode='tensor')`` under mmengine's
``get_model_complexity_info`` (one multiply-add = one FLOP) -- but on a zero image of a given
padded shape, so tests and benchmarks need no dataset.
"""
import time
from functools import partial
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope


def build_model(cfg: Union[str, Config, dict], device='cpu'):
    """Build ``cfg.model`` (a config path, a Config or a model dict) in eval mode."""
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    model_cfg = cfg['model'] if 'model' in cfg else cfg
    scope = cfg.get('default_scope', 'mmdet') if 'model' in cfg else 'mmdet'
    init_default_scope(scope)
    if scope == 'mmpose':
        from mmpose.registry import MODELS
    else:
        from mmdet.registry import MODELS
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    return model.to(device).eval()


def dummy_det_samples(shape: Tuple[int, int], batch: int = 1):
    """DetDataSamples carrying the meta keys mmdet heads read at test time."""
    from mmdet.structures import DetDataSample
    h, w = shape
    meta = dict(img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w), ori_shape=(h, w),
                scale_factor=(1.0, 1.0), border=(0, h, 0, w), img_id=0)
    return [DetDataSample(metainfo=meta) for _ in range(batch)]


def model_complexity(cfg, shape: Sequence[int] = (640, 640)) -> Dict[str, float]:
    """FLOPs (multiply-adds) and parameters of a detector's tensor forward at ``shape`` (H, W)."""
    model = cfg if isinstance(cfg, torch.nn.Module) else build_model(cfg)
    h, w = shape
    inputs = torch.zeros(1, 3, h, w)
    samples = dummy_det_samples((h, w))
    forward = model.forward
    model.forward = partial(forward, data_samples=samples, mode='tensor')
    try:
        with torch.no_grad():  # counting needs no autograd graph (halves peak memory)
            out = get_model_complexity_info(model, None, inputs=inputs, show_table=False,
                                            show_arch=False)
    finally:
        model.forward = forward
    return dict(flops=float(out['flops']), params=float(out['params']))


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def synthetic_batch(shape: Tuple[int, int], device='cpu') -> dict:
    """One random uint8 image of ``shape`` (H, W) packed as a dataloader batch (batch size 1)."""
    h, w = shape
    gen = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen).to(device)
    return dict(inputs=[img], data_samples=dummy_det_samples((h, w)))


def _sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


@torch.no_grad()
def time_test_step(model, batches: Iterable[dict], num_iters: int = 20, num_warmup: int = 3,
                   device='cpu', predict: bool = True, log_interval: int = 0) -> List[float]:
    """Seconds per timed batch of what mmdet's benchmark times: ``model.test_step`` under
    ``no_grad`` -- the data preprocessor (normalise, pad) and ``predict`` with its
    post-processing -- after ``num_warmup`` untimed batches. ``predict=False`` times the
    preprocessor and the tensor forward instead (no post-processing). ``batches`` is cycled."""
    model = model.to(device).eval()
    batches = list(batches)
    times = []
    for i in range(num_warmup + num_iters):
        batch = batches[i % len(batches)]
        _sync(device)
        t0 = time.perf_counter()
        if predict:
            model.test_step(batch)
        else:
            data = model.data_preprocessor(batch, False)
            model(**data, mode='tensor')
        _sync(device)
        if i >= num_warmup:
            times.append(time.perf_counter() - t0)
            done = len(times)
            if log_interval and done % log_interval == 0:
                fps = done / sum(times)
                print(f'Done image [{done:<3}/{num_iters}], fps: {fps:.1f} img/s, '
                      f'times per image: {1000 / fps:.1f} ms/img', flush=True)
    return times


def inference_speed(model, shape: Sequence[int] = (640, 640), num_iters: int = 20,
                    num_warmup: int = 3, device='cpu', predict: bool = True,
                    log_interval: int = 0) -> float:
    """Images per second of single-image inference on a random image of ``shape``: data
    preprocessor + forward (``mode='predict'`` includes post-processing), see
    :func:`time_test_step`."""
    times = time_test_step(model, [synthetic_batch(tuple(shape), device)], num_iters,
                           num_warmup, device, predict, log_interval)
    return len(times) / sum(times)
