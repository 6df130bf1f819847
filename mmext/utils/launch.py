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


def _synthetic_paths(ds):
    """(data_root, ann_file) a ``SyntheticShapesDataset`` config reads (its defaults included)."""
    from mmext.datasets.synthetic_dataset import DATA_ROOT
    root = ds.get('data_root') or DATA_ROOT
    ann = ds.get('ann_file') or osp.join('annotations', f"{ds.get('split', 'train')}.json")
    return root, ann


def _evaluators(cfg, phase):
    ev = cfg.get(f'{phase}_evaluator')
    if not ev:
        return
    for i, e in enumerate(ev if isinstance(ev, (list, tuple)) else [ev]):
        if isinstance(e, dict) and e.get('ann_file'):
            yield (f'{phase}_evaluator' if not isinstance(ev, (list, tuple)) else
                   f'{phase}_evaluator[{i}]'), e


def _full(root, ann):
    return ann if (osp.isabs(ann) or not root) else osp.join(root, ann)


def _evaluator_fix(ann_file, roots):
    """The evaluator path to suggest: the dataset root swapped for the user's copy."""
    for root in roots:
        if root and ann_file.startswith(root):
            return '/path/to/dataset/' + ann_file[len(root):].lstrip('/')
    return '/path/to/dataset/annotations/' + osp.basename(ann_file)


def check_data_paths(cfg, phases=('train', 'val', 'test')):
    """Raise :class:`DatasetNotFoundError` naming every missing dataset file and how to fix it.

    Checks the annotation file of every dataset (wrapped ones too) of the given phases and the
    ``ann_file`` of their evaluators, and reports all that are missing at once, with the
    ``--cfg-options`` that point each one at the user's copy. Only per-key overrides work for
    an inherited config: mmengine substitutes a base's ``data_root`` variable into its
    dataloaders when the base is read, so redefining ``data_root`` in a derived config changes
    nothing. ``SyntheticShapesDataset`` generates its files on first use; for it the check is
    that its evaluator reads the same set (a different ``data_root`` would otherwise generate
    a fresh set while the evaluator scores against the old one).
    """
    if cfg.get('synthetic_data'):
        from mmext.datasets.synthetic import ensure_generated
        ensure_generated(**cfg.synthetic_data)
    missing, fixes, mismatched, roots = [], [], [], []
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        synthetic = []
        for path, ds in _iter_datasets(loader.get('dataset'), f'{phase}_dataloader.dataset'):
            if ds.get('type') == 'SyntheticShapesDataset':
                synthetic.append((path, _full(*_synthetic_paths(ds))))
                continue
            ann_file = ds.get('ann_file')
            if not ann_file:
                continue
            root = ds.get('data_root') or ''
            roots.append(root)
            full = _full(root, ann_file)
            if osp.exists(full) or '://' in full:
                continue
            missing.append(f"  {path}.ann_file: '{full}' (data_root='{root}', "
                           f"ann_file='{ann_file}')")
            fixes.append(f'{path}.data_root=/path/to/dataset/')
        if phase == 'train':
            continue  # training itself has no evaluator; val's is checked with 'val'
        for path, ev in _evaluators(cfg, phase):
            ann = ev['ann_file']
            if synthetic:
                wanted = {f for _, f in synthetic}
                if osp.normpath(ann) not in {osp.normpath(f) for f in wanted}:
                    mismatched.append(f"  {path}.ann_file='{ann}' but {synthetic[0][0]} reads "
                                      f"'{synthetic[0][1]}'")
                continue
            if osp.exists(ann) or '://' in ann:
                continue
            missing.append(f"  {path}.ann_file: '{ann}'")
            fixes.append(f'{path}.ann_file={_evaluator_fix(ann, roots)}')
    if mismatched:
        raise DatasetNotFoundError(
            'the evaluator does not score the synthetic set the dataloader reads:\n'
            + '\n'.join(mismatched) + '\nSet both to the same set, e.g. --cfg-options '
            + ' '.join(f"{m.split('.ann_file=')[0].strip()}.ann_file="
                       f"{m.split(' reads ')[1].strip()}" for m in mismatched))
    if missing:
        msg = ('dataset files not found:\n' + '\n'.join(missing) + '\n'
               'Put the dataset there, or point the config at your copy. An inherited config '
               "keeps its base's paths (setting `data_root = ...` in a derived config does not "
               'reach the inherited dataloaders), so override each key:\n'
               '  --cfg-options ' + ' '.join(dict.fromkeys(fixes)))
        alt = cfg.get('synthetic_config')
        if alt:
            msg += f'\nTo try this model without the dataset, train {alt}'
        raise DatasetNotFoundError(msg)


class DatasetContentError(ValueError):
    """A dataset file exists but holds nothing the config can use."""


def explain_empty_dataset(cfg, phases=('train', 'val', 'test')):
    """Why a dataset came out empty, as :class:`DatasetContentError` (None if no reason found).

    Called when building a dataset failed with mmengine's bare
    ``need at least one array to concatenate`` (a dataset with no items). Reads each COCO-style
    annotation file of the phases and names the file and what is wrong with it: empty, not
    JSON, no images, or none of the config's classes among its categories."""
    import json
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        for path, ds in _iter_datasets(loader.get('dataset'), f'{phase}_dataloader.dataset'):
            if ds.get('type') == 'SyntheticShapesDataset':
                root, ann = _synthetic_paths(ds)
            else:
                root, ann = ds.get('data_root') or '', ds.get('ann_file')
            if not ann or not str(ann).endswith('.json'):
                continue
            full = _full(root, ann)
            if not osp.isfile(full):
                continue
            where = f"{path}.ann_file '{full}'"
            if osp.getsize(full) == 0:
                return DatasetContentError(f'{where} is empty (0 bytes)')
            try:
                with open(full) as f:
                    data = json.load(f)
            except ValueError as e:
                return DatasetContentError(f'{where} is not valid JSON: {e}')
            if not isinstance(data, dict) or not data.get('images'):
                return DatasetContentError(f'{where} lists no images')
            names = [c.get('name') for c in data.get('categories', [])]
            classes = (ds.get('metainfo') or {}).get('classes') or _default_classes(ds)
            if classes is not None and not set(classes) & set(names):
                return DatasetContentError(
                    f"{where}: none of the config's classes {tuple(classes)} is among the "
                    f"file's categories {tuple(names)}; set "
                    f"{path}.metainfo=dict(classes=(...)) to names the file uses")
            if not data.get('annotations'):
                return DatasetContentError(f'{where} has images but no annotations (every '
                                           'image is dropped by filter_empty_gt)')
    return None


def _default_classes(ds):
    from mmdet.registry import DATASETS
    try:
        cls = DATASETS.get(ds.get('type'))
    except Exception:  # noqa: BLE001  (an unknown type is reported by the build itself)
        return None
    return getattr(cls, 'METAINFO', {}).get('classes') if cls else None


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
