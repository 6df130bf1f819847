"""``SyntheticShapesDataset``: the embedded synthetic set as an mmdet ``CocoDataset``.

A config names a split instead of paths, and the files are generated (deterministically, in
seconds) on first use, so every synthetic config runs on a fresh checkout:

    dataset=dict(type='SyntheticShapesDataset', split='val', pipeline=test_pipeline)
"""
import os.path as osp

from mmdet.datasets import CocoDataset
from mmengine.dist import barrier, get_dist_info, is_distributed

from ..registry import DATASETS
from .synthetic import CLASSES, KNOWN_SPLITS, ensure_generated

SPLITS = tuple(KNOWN_SPLITS)
DATA_ROOT = 'data/synthetic/'


@DATASETS.register_module()
class SyntheticShapesDataset(CocoDataset):
    """COCO-format synthetic shapes (see :mod:`mmext.datasets.synthetic`).

    Args:
        split: one of ``'train'``, ``'val'`` (128 / 32 images), ``'train_rows'``,
            ``'val_rows'`` (the row layout), ``'train_large'``, ``'val_large'`` (1024 / 256
            images like ``'train'``/``'val'``).
        data_root: where the set lives or is generated (default ``data/synthetic/``).
        seed: generator seed; files already present are used as they are.
        **kwargs: everything else :class:`mmdet.datasets.CocoDataset` takes.
    """
    METAINFO = dict(
        classes=CLASSES, palette=[(220, 20, 60), (0, 128, 255), (0, 200, 0)])

    def __init__(self, split='train', data_root=DATA_ROOT, seed=0, **kwargs):
        if split not in SPLITS:
            raise ValueError(f'SyntheticShapesDataset: split={split!r} is not one of {SPLITS}')
        # one process writes, the others wait: DDP workers must not race on the same files
        if get_dist_info()[0] == 0:
            ensure_generated(data_root, [split], seed)
        if is_distributed():
            barrier()
        kwargs.setdefault('ann_file', osp.join('annotations', f'{split}.json'))
        kwargs.setdefault('data_prefix', dict(img=f'{split}/'))
        super().__init__(data_root=data_root, **kwargs)
