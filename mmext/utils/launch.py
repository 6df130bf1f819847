"""What mmext's tools/train.py and tools/test.py add to MMDetection's: config preparation shared
by both, distributed training on CPUs, and a clear error for datasets that are not there.

mmengine 0.10.7 can only launch DDP on GPUs: its ``init_dist`` calls ``torch.cuda.set_device``
and ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]``. On a machine without CUDA we
create the gloo process group ourselves before the Runner exists (mmengine then skips its own
init) and ask for ``MMDistributedDataParallel`` with ``device_ids=None``. SyncBN has no CPU
implementation, so on CPU it becomes BN (each process normalises its own batch).
"""
import os
import os.path as osp
import subprocess

import torch
import torch.distributed as dist


class DatasetNotFoundError(FileNotFoundError):
    """A config points at a dataset file that does not exist."""


def _iter_datasets(cfg_dataset, path):
    """Yield (config path, dataset cfg) for a dataset cfg and any datasets it wraps."""
    if cfg_dataset is None:
        return
    if isinstance(cfg_dataset, (list, tuple)):
        for i, d in enumerate(cfg_dataset):
            yield from _iter_datasets(d, f'{path}[{i}]')
        return
    yield path, cfg_dataset
    if 'dataset' in cfg_dataset:
        yield from _iter_datasets(cfg_dataset['dataset'], f'{path}.dataset')
    if 'datasets' in cfg_dataset:
        yield from _iter_datasets(cfg_dataset['datasets'], f'{path}.datasets')


def check_data_paths(cfg, phases=('train', 'val', 'test')):
    """Raise :class:`DatasetNotFoundError` naming the missing file and how to fix it.

    Synthetic configs (those with a top-level ``synthetic_data`` dict) generate their data on
    first use instead: it is deterministic and takes seconds.
    """
    if cfg.get('synthetic_data'):
        from mmext.datasets.synthetic import ensure_generated
        ensure_generated(**cfg.synthetic_data)
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        for path, ds in _iter_datasets(loader.get('dataset'), f'{phase}_dataloader.dataset'):
            ann_file = ds.get('ann_file')
            if not ann_file:
                continue
            data_root = ds.get('data_root') or ''
            full = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
            if osp.exists(full) or '://' in full:
                continue
            msg = (f"dataset file not found: '{full}' (looked for {path}.ann_file="
                   f"'{ann_file}' under data_root='{data_root}').\n"
                   f'Put the dataset there, or point the config at your copy, e.g.\n'
                   f'  --cfg-options {path}.data_root=/path/to/dataset/\n'
                   f"(or set `data_root = '/path/to/dataset/'` in the config).")
            alt = cfg.get('synthetic_config')
            if alt:
                msg += f'\nTo try this model without the dataset, train {alt}'
            raise DatasetNotFoundError(msg)


def _replace_sync_bn(node):
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN', 'TorchSyncBN'):
            node['type'] = 'BN'
        for v in node.values():
            _replace_sync_bn(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _replace_sync_bn(v)


def adapt_cfg_to_device(cfg):
    """On machines without CUDA: SyncBN -> BN (SyncBN has no CPU kernel)."""
    if torch.cuda.is_available():
        return cfg
    _replace_sync_bn(cfg.model)
    if cfg.get('sync_bn'):
        cfg.sync_bn = None
    return cfg


def _slurm_to_torchrun_env():
    """Translate SLURM's variables into the ones torch.distributed reads."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_PORT', '29500')


def setup_cpu_distributed(cfg, launcher):
    """Start a gloo process group on CUDA-less machines so mmengine can train with DDP."""
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    if launcher == 'slurm':
        _slurm_to_torchrun_env()
    elif launcher == 'mpi':
        os.environ.setdefault('RANK', os.environ['OMPI_COMM_WORLD_RANK'])
        os.environ.setdefault('WORLD_SIZE', os.environ['OMPI_COMM_WORLD_SIZE'])
        os.environ.setdefault('LOCAL_RANK', os.environ['OMPI_COMM_WORLD_LOCAL_RANK'])
        os.environ.setdefault('MASTER_PORT', '29500')
    if not dist.is_initialized():
        dist.init_process_group('gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return cfg


def apply_common_args(cfg, args):
    """launcher, --cfg-options and --work-dir, the way mmdet's tools apply them."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    adapt_cfg_to_device(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    return cfg


def build_runner(cfg):
    """The Runner mmdet's tools would build (honours ``runner_type``)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
