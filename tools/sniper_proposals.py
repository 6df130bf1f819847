"""Write RPN proposals over a SNIPER training set, for SNIPER's negative chips.

    python tools/sniper_proposals.py CONFIG CKPT --out proposals.npz [--max-proposals 300]
                                     [--limit N] [--cfg-options k=v ...]

SNIPER (Singh et al., NeurIPS 2018, arXiv:1805.09300) mines negative chips from the proposals of
an RPN trained briefly (~2 epochs) *without* negative chips. CONFIG is that stage: a SNIPER
config whose ``train_dataloader.dataset`` is a ``SNIPERDataset`` with ``proposal_file=None``
and whose model has an RPN (a two-stage detector's ``rpn_head`` or mmdet's ``RPN`` detector).
For every training image and every SNIPER scale, the image is resized to that scale, the RPN
runs on it and the top ``--max-proposals`` proposals (original pixels, with scores) are kept.

Output: a NumPy ``.npz`` archive of plain arrays (per image and scale, (P, 5) proposals; layout in
:mod:`mmext.datasets.proposal_io`) -- what ``SNIPERDataset(proposal_file=...)`` reads, without
pickle, so a proposals file cannot run code.
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import mmext  # noqa: E402,F401  (registers mmext, makes checkpoints loadable)
from mmext.datasets.proposal_io import save_proposals  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='RPN proposals for SNIPER negative chips')
    parser.add_argument('config', help='SNIPER config with an RPN (trained without negatives)')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('--out', required=True, help='.npz file to write')
    parser.add_argument('--max-proposals', type=int, default=300,
                        help='proposals kept per image and scale (paper: 300)')
    parser.add_argument('--limit', type=int, default=None, help='only the first N images')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.max_proposals <= 0:
        parser.error(f'--max-proposals={args.max_proposals} must be > 0')
    if not args.out.endswith('.npz'):
        parser.error(f'--out {args.out!r} must end in .npz (proposals are stored without pickle)')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint} does not exist')
    return args


def sniper_dataset_cfg(cfg: Config):
    """(inner dataset config, SNIPER settings) of the config's training set."""
    ds = cfg.train_dataloader.dataset
    if ds.get('type') != 'SNIPERDataset':
        raise ValueError(f"{cfg.filename}: train_dataloader.dataset is {ds.get('type')!r}, "
                         "not 'SNIPERDataset'; give the SNIPER config of the RPN stage")
    return ds.dataset, ds


def scale_pipeline(scale, chip_size: int) -> list:
    """Load and resize to one SNIPER scale (``'fit'``: chip_size / max side)."""
    resize = (dict(type='Resize', scale=(chip_size, chip_size), keep_ratio=True)
              if scale == 'fit' else dict(type='Resize', scale_factor=float(scale),
                                          keep_ratio=True))
    return [dict(type='LoadImageFromFile'), resize,
            dict(type='PackDetInputs',
                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]


@torch.no_grad()
def rpn_proposals(model, item: dict, max_proposals: int) -> np.ndarray:
    """(P, 5) x1y1x2y2+score proposals of one packed item, in original pixels."""
    data = model.data_preprocessor(pseudo_collate([item]), False)
    feats = model.extract_feat(data['inputs'])
    head = model.rpn_head if hasattr(model, 'rpn_head') else model.bbox_head
    res = head.predict(feats, data['data_samples'], rescale=True)[0]
    order = res.scores.argsort(descending=True)[:max_proposals]
    return torch.cat([res.bboxes[order], res.scores[order, None]], 1).cpu().numpy()


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import DATASETS, MODELS
    inner, sniper = sniper_dataset_cfg(cfg)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(args.device).eval()
    if not (hasattr(model, 'rpn_head') or type(model).__name__ == 'RPN'):
        raise ValueError(f'{type(model).__name__} has no RPN: use a two-stage or RPN config')
    scales = tuple(sniper.get('scales', (3.0, 1.667, 'fit')))
    chip_size = sniper.get('chip_size', 512)
    out = {}
    for k, scale in enumerate(scales):
        ds_cfg = inner.copy()
        ds_cfg['pipeline'] = scale_pipeline(scale, chip_size)
        ds_cfg['test_mode'] = True  # keep every image, as the wrapper indexes them
        ds_cfg.pop('filter_cfg', None)
        dataset = DATASETS.build(ds_cfg)
        n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        for i in range(n):
            item = dataset[i]
            img_id = item['data_samples'].img_id
            out.setdefault(img_id, [None] * len(scales))[k] = rpn_proposals(
                model, item, args.max_proposals)
        print(f'scale {scale}: proposals for {n} images')
    save_proposals(args.out, scales, out)
    print(f'wrote {args.out}')
    if args.limit is not None:
        print(f'note: --limit {args.limit}: images after the first {args.limit} have no proposals '
              'and get no negative chips (SNIPERDataset warns with the counts)')


if __name__ == '__main__':
    main()
