"""Proposal files for SNIPER's negative chips, in a format that cannot run code.

``tools/sniper_proposals.py`` writes, and :class:`~mmext.datasets.sniper.SNIPERDataset` reads, a
NumPy ``.npz`` archive loaded with ``allow_pickle=False``: plain arrays only, so a crafted file
can at worst hold wrong numbers. Its arrays:

* ``scales`` (K,) str -- the SNIPER scales the proposals were computed at (``'3.0'``, ``'fit'``);
* ``img_ids`` (N,) int64 or str -- the images, in file order;
* ``counts`` (N, K) int64 -- how many proposals image i has at scale k (-1: not computed);
* ``boxes`` (sum of counts, 5) float32 -- x1, y1, x2, y2, score in original pixels, image-major
  then scale-major.

Older mmext releases wrote a pickle (``{'scales': ..., 'proposals': {img_id: [array ...]}}``).
Plain ``pickle.load`` would run whatever a crafted pickle asks for, so such files are read only
through a restricted unpickler whose ``find_class`` hands out numpy's array, dtype and scalar
reconstructors and nothing else (torch's ``weights_only`` unpickler would be the obvious choice,
but it reads only pickle protocol 2, and ``pickle.dump`` writes protocol 4); anything else in a
file is refused with a message that names the refused global and says how to convert the file.
"""
import os
import os.path as osp
import pickle
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

Scale = Union[float, str]
ProposalDict = Dict[Union[int, str], List[Optional[np.ndarray]]]

FORMAT_KEYS = ('scales', 'img_ids', 'counts', 'boxes')


class ProposalFileError(ValueError):
    """A proposals file that is missing, malformed, or refused by the safe loader."""


def _scale_to_str(scale: Scale) -> str:
    return scale if isinstance(scale, str) else repr(float(scale))


def _scale_from_str(text: str) -> Scale:
    try:
        return float(text)
    except ValueError:
        return str(text)


def save_proposals(path: str, scales: Sequence[Scale], proposals: ProposalDict) -> str:
    """Write ``{img_id: [(P, 5) array or None per scale]}`` to ``path`` (``.npz``)."""
    if not path.endswith('.npz'):
        raise ProposalFileError(f'proposals file {path!r} must end in .npz (NumPy archive, '
                                'loaded without pickle)')
    k = len(scales)
    ids = list(proposals)
    counts = np.full((len(ids), k), -1, dtype=np.int64)
    chunks = []
    for i, img_id in enumerate(ids):
        per_scale = proposals[img_id]
        if len(per_scale) != k:
            raise ProposalFileError(f'image {img_id!r} has proposals for {len(per_scale)} '
                                    f'scales, expected {k} ({tuple(scales)})')
        for j, arr in enumerate(per_scale):
            if arr is None:
                continue
            arr = np.asarray(arr, dtype=np.float32).reshape(-1, 5)
            counts[i, j] = len(arr)
            chunks.append(arr)
    id_arr = np.asarray(ids) if ids else np.zeros(0, np.int64)
    if id_arr.dtype.kind not in 'iuU':
        raise ProposalFileError(f'image ids must be integers or strings, got {id_arr.dtype}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    np.savez_compressed(
        path, scales=np.asarray([_scale_to_str(s) for s in scales]),
        img_ids=id_arr.astype(np.int64) if id_arr.dtype.kind in 'iu' else id_arr,
        counts=counts,
        boxes=np.concatenate(chunks) if chunks else np.zeros((0, 5), np.float32))
    return path


def _read_npz(path: str) -> Tuple[Tuple[Scale, ...], ProposalDict]:
    with np.load(path, allow_pickle=False) as z:
        missing = [key for key in FORMAT_KEYS if key not in z.files]
        if missing:
            raise ProposalFileError(f'{path} is not an mmext proposals file: arrays {missing} '
                                    f'are missing (found {sorted(z.files)})')
        try:
            scales = tuple(_scale_from_str(s) for s in z['scales'].tolist())
            ids, counts, boxes = z['img_ids'], z['counts'], z['boxes']
        except ValueError as e:  # an object array: np.load refuses to unpickle it
            raise ProposalFileError(f'{path}: {e} (mmext never unpickles proposals)') from None
    if counts.shape != (len(ids), len(scales)) or boxes.ndim != 2 or boxes.shape[1] != 5:
        raise ProposalFileError(
            f'{path}: inconsistent shapes img_ids {ids.shape}, counts {counts.shape} (expected '
            f'({len(ids)}, {len(scales)})), boxes {boxes.shape} (expected (M, 5))')
    if int(counts.clip(min=0).sum()) != len(boxes):
        raise ProposalFileError(f'{path}: counts add up to {int(counts.clip(min=0).sum())} '
                                f'proposals but boxes holds {len(boxes)}')
    out, start = {}, 0
    for img_id, row in zip(ids.tolist(), counts):
        per_scale = []
        for n in row:
            if n < 0:
                per_scale.append(None)
                continue
            per_scale.append(boxes[start:start + n].astype(np.float64))
            start += int(n)
        out[img_id] = per_scale
    return scales, out


# What a pickled proposals dict of plain NumPy arrays needs, and nothing else: numpy's array and
# scalar reconstructors, dtypes, and the containers pickle itself builds without globals.
_PICKLE_ALLOWED = {
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
    ('numpy', 'ndarray'), ('numpy', 'dtype'), ('collections', 'OrderedDict'),
    ('_codecs', 'encode'),  # protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1')
}


class _RestrictedUnpickler(pickle.Unpickler):
    """``find_class`` is the only way a pickle reaches a callable (Python's "Restricting
    Globals"); this one hands out only :data:`_PICKLE_ALLOWED` and numpy's dtype classes."""

    def find_class(self, module, name):
        if (module, name) in _PICKLE_ALLOWED or (
                module in ('numpy.dtypes', 'numpy._core.dtypes') and name.endswith('DType')):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'global {module}.{name} is not allowed')


def _read_legacy_pickle(path: str) -> Tuple[Optional[Tuple[Scale, ...]], ProposalDict]:
    """Pickles of older releases, through a restricted unpickler only."""
    try:
        with open(path, 'rb') as f:
            data = _RestrictedUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise ProposalFileError(
            f'refused to load {path}: it is a pickle, and mmext reads old pickled proposal files '
            f'only through a restricted unpickler (numpy arrays, numbers, strings, lists, '
            f'tuples and dicts), which refused it: {e}. Write proposals with '
            f'tools/sniper_proposals.py --out FILE.npz; if you trust this file, convert it '
            f'yourself to the .npz layout of mmext.datasets.proposal_io') from None
    if not isinstance(data, dict):
        raise ProposalFileError(f'{path} holds a {type(data).__name__}, not a proposals dict')
    props = data['proposals'] if 'proposals' in data else data
    saved = data.get('scales')
    return (tuple(saved) if saved is not None else None), props


def load_proposals(path: str) -> Tuple[Optional[Tuple[Scale, ...]], ProposalDict]:
    """``(scales or None, {img_id: [(P, 5) float array or None per scale]})`` of a file."""
    if not osp.isfile(path):
        raise ProposalFileError(f'proposals file not found: {path!r} (write one with '
                                'tools/sniper_proposals.py CONFIG CKPT --out FILE.npz)')
    if zipfile.is_zipfile(path):
        return _read_npz(path)
    return _read_legacy_pickle(path)
