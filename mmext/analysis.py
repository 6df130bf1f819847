"""Model complexity and throughput without a dataset.

:func:`model_complexity` counts exactly what mmdet's ``tools/analysis_tools/get_flops.py``
counts -- ``model.forward(inputs, data_samples, mode='tensor')`` under mmengine's
``get_model_complexity_info`` (one multiply-add = one FLOP) -- but on a zero image of a given
padded shape, so tests and benchmarks need no dataset.
"""
import time
from functools import partial
from typing import Dict, Sequence, Tuple, Union

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


@torch.no_grad()
def inference_speed(model, shape: Sequence[int] = (640, 640), num_iters: int = 20,
                    num_warmup: int = 3, device='cpu', predict: bool = True,
                    log_interval: int = 0) -> float:
    """Images per second of single-image inference (``mode='predict'`` includes post-processing)."""
    model = model.to(device).eval()
    h, w = shape
    inputs = torch.rand(1, 3, h, w, device=device) * 255
    samples = dummy_det_samples((h, w))
    mode = 'predict' if predict else 'tensor'
    sync = torch.cuda.synchronize if str(device).startswith('cuda') else (lambda: None)
    elapsed = 0.0
    fps = 0.0
    for i in range(num_warmup + num_iters):
        sync()
        t0 = time.perf_counter()
        model(inputs, samples, mode=mode)
        sync()
        if i >= num_warmup:
            elapsed += time.perf_counter() - t0
            done = i + 1 - num_warmup
            fps = done / elapsed
            if log_interval and done % log_interval == 0:
                print(f'Done image [{done:<3}/{num_iters}], fps: {fps:.1f} img/s, '
                      f'times per image: {1000 / fps:.1f} ms/img', flush=True)
    return fps
