"""SNIPER chips: which 512x512 pieces of which image scales a detector is trained on.

Singh, Najibi, Davis, "SNIPER: Efficient Multi-Scale Training", NeurIPS 2018 (arXiv:1805.09300);
official code mahyarnajibi/SNIPER (MXNet). Figures below: the paper's COCO set-up, as summarised
in ``shared/REFERENCE.md`` (SNIPER).

Instead of whole images at three scales, SNIPER trains on fixed-size *chips*:

* per image and scale, candidate K x K chips lie on a d-pixel grid of the scaled image (the last
  row/column is moved so chips end at the image border; an image smaller than a chip has one chip
  at the origin, and the batch padding fills the rest);
* a box is *valid* at a scale when its sqrt(area), in original pixels, lies in that scale's range;
  positive chips are taken greedily -- always the chip fully containing the most still-uncovered
  valid boxes -- until every valid box lies entirely inside some chip;
* inside a chip, every box that meets it is clipped to it and dropped when the clipped box is under
  ``min_box_size`` chip pixels; boxes that are invalid at the chip's scale stay as *ignore regions*
  (``ignore_flag=1``, mmdet's ``gt_ignore_flags``), not background;
* negative chips come from RPN proposals (``tools/sniper_proposals.py``): the top proposals in the
  scale's range that no positive chip contains, covered greedily, keeping chips with more than
  ``neg_min_proposals`` of them; ``neg_per_image`` are sampled per image and epoch.

Scales are listed finest first, as the official config lists them (its ``SCALES`` 1400x2000,
800x1280, 512x512 pair with ``VALID_RANGES`` [0,80], [32,150], [120,inf)); ``'fit'`` is the
image-dependent scale chip_size / max(w, h) -- REFERENCE's "512/max(w,h)", the coarsest.

Chip generation is vectorised: the grid is a product of x and y start positions, so "chip (i, j)
contains box b" is ``cx[i, b] & cy[j, b]`` and the number of uncovered boxes in every chip is the
matrix product ``cx[:, u] @ cy[:, u].T``; the greedy loop runs once per *selected chip*, never
per box.
"""
import copy
import zlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import force_full_init
from mmengine.hooks import Hook

from ..registry import DATASETS, HOOKS
from .proposal_io import load_proposals

INF = float('inf')
Scale = Union[float, str]

# The paper's COCO set-up (REFERENCE.md, SNIPER). Ranges are sqrt(box area) in original pixels,
# paired with the scales in order (finest first).
SNIPER_COCO = dict(
    chip_size=512,
    stride=32,
    scales=(3.0, 1.667, 'fit'),
    valid_ranges=((0, 80), (32, 150), (120, INF)),
    test_ranges=((0, 90), (32, 180), (75, INF)),
    min_box_size=10,  # clipped boxes under 10 chip pixels are dropped
    neg_max_proposals=300,  # top RPN proposals used per scale
    neg_min_proposals=(25, 10, 10),  # a negative chip holds > 25 proposals (> 10 coarser)
    neg_per_image=2,  # negative chips sampled per image and epoch
)


# --------------------------------------------------------------------------- parameters
def resolve_scale(scale: Scale, width: float, height: float, chip_size: int) -> float:
    """The numeric scale for a ``width`` x ``height`` image (``'fit'``: K / max side)."""
    if scale == 'fit':
        return chip_size / max(width, height)
    return float(scale)


def check_sniper_params(chip_size: int, stride: int, scales: Sequence[Scale],
                        valid_ranges: Sequence[Sequence[float]], min_box_size: float = 0,
                        name: str = 'valid_ranges') -> None:
    """Reject a SNIPER configuration that cannot work, naming the bad value.

    Rules: the chip size is a positive multiple of the stride; scales are positive numbers listed
    finest first (strictly decreasing), with ``'fit'`` allowed only last; one range per scale,
    each ``0 <= lo < hi``; ranges move up with coarser scales (lo and hi non-decreasing) and
    neighbours overlap or touch, so every object size is valid at some scale; the largest valid
    box of a numeric scale fits in a chip (hi * scale <= chip_size).

    Raises:
        ValueError or TypeError describing the first violated rule.
    """
    if not isinstance(chip_size, int) or not isinstance(stride, int):
        raise TypeError(f'chip_size={chip_size!r} and stride={stride!r} must be ints')
    if chip_size <= 0 or stride <= 0 or chip_size % stride:
        raise ValueError(f'chip_size={chip_size} must be a positive multiple of '
                         f'stride={stride}')
    if len(scales) == 0:
        raise ValueError('scales is empty: give at least one scale')
    numeric = []
    for i, s in enumerate(scales):
        if s == 'fit':
            if i != len(scales) - 1:
                raise ValueError(f"scales={tuple(scales)}: 'fit' (chip_size / max side) is the "
                                 'coarsest scale and must come last')
            continue
        if isinstance(s, str) or not isinstance(s, (int, float)):
            raise TypeError(f"scales[{i}]={s!r}: a scale is a positive number or 'fit'")
        if not s > 0:
            raise ValueError(f'scales[{i}]={s}: scales must be positive')
        numeric.append(float(s))
    if any(a <= b for a, b in zip(numeric, numeric[1:])):
        raise ValueError(f'scales={tuple(scales)} must be listed finest first (strictly '
                         'decreasing)')
    if len(valid_ranges) != len(scales):
        raise ValueError(f'{name} has {len(valid_ranges)} ranges for {len(scales)} scales')
    for i, (lo, hi) in enumerate(valid_ranges):
        if not 0 <= lo < hi:
            raise ValueError(f'{name}[{i}]=({lo}, {hi}) must satisfy 0 <= lo < hi')
        if scales[i] != 'fit' and hi * float(scales[i]) > chip_size:
            raise ValueError(f'{name}[{i}]=({lo}, {hi}) at scale {scales[i]}: a valid box of '
                             f'{hi} px becomes {hi * float(scales[i]):.0f} px, larger than '
                             f'chip_size={chip_size}')
    for i in range(1, len(valid_ranges)):
        (lo0, hi0), (lo1, hi1) = valid_ranges[i - 1], valid_ranges[i]
        if lo1 < lo0 or hi1 < hi0:
            raise ValueError(f'{name}[{i - 1}]=({lo0}, {hi0}) and [{i}]=({lo1}, {hi1}): '
                             'coarser scales must take larger objects (lo and hi '
                             'non-decreasing)')
        if lo1 > hi0:
            raise ValueError(f'{name}[{i - 1}]=({lo0}, {hi0}) and [{i}]=({lo1}, {hi1}) leave '
                             f'a gap: objects of {hi0}-{lo1} px are valid at no scale')
    if min_box_size < 0:
        raise ValueError(f'min_box_size={min_box_size} must be >= 0')


# --------------------------------------------------------------------------- chip geometry
def chip_starts(length: int, chip_size: int, stride: int) -> np.ndarray:
    """Start offsets of chips along one side of a ``length``-pixel scaled image.

    A ``stride`` grid from 0, plus ``length - chip_size`` when the grid misses the border, so the
    union of chips covers the side and no chip leaves the image. ``length <= chip_size``: ``[0]``.
    """
    if length <= chip_size:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - chip_size + 1, stride, dtype=np.int64)
    if starts[-1] != length - chip_size:
        starts = np.append(starts, length - chip_size)
    return starts


def _contains_1d(starts: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 chip_size: int) -> np.ndarray:
    """(n_starts, n_boxes): the interval [start, start + K] contains [lo, hi]."""
    return (starts[:, None] <= lo[None]) & (starts[:, None] + chip_size >= hi[None])


def greedy_chips(boxes: np.ndarray, img_w: int, img_h: int, chip_size: int, stride: int,
                 min_count: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy set cover of ``boxes`` (scaled pixels, x1y1x2y2) by grid chips.

    Repeatedly takes the chip that fully contains the most not yet covered boxes (ties: lowest
    y, then x start) until every coverable box is covered or the best chip would cover no more
    than ``min_count`` new boxes.

    Args:
        boxes: (N, 4) boxes in the scaled image.
        img_w, img_h: size of the scaled image (integers).
        chip_size, stride: chip side K and grid step d.
        min_count: a chip is kept only when it newly covers more than this many boxes.

    Returns:
        chips (M, 4) int x1y1x2y2 (clipped to the scaled image), the number of boxes each chip
        newly covered (M,), and a (N,) bool mask of boxes no chip can contain (too large).
    """
    xs = chip_starts(img_w, chip_size, stride)
    ys = chip_starts(img_h, chip_size, stride)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx = _contains_1d(xs, boxes[:, 0], boxes[:, 2], chip_size)
    cy = _contains_1d(ys, boxes[:, 1], boxes[:, 3], chip_size)
    uncoverable = ~(cx.any(0) & cy.any(0))
    todo = ~uncoverable
    chips, counts = [], []
    cxf, cyf = cx.astype(np.float32), cy.astype(np.float32)
    while todo.any():
        # counts[j, i]: uncovered boxes inside the chip starting at (xs[i], ys[j])
        grid = cyf[:, todo] @ cxf[:, todo].T
        j, i = np.unravel_index(int(np.argmax(grid)), grid.shape)
        best = int(round(grid[j, i]))
        if best <= min_count:
            break
        chips.append((xs[i], ys[j], min(xs[i] + chip_size, img_w), min(ys[j] + chip_size,
                                                                       img_h)))
        counts.append(best)
        todo &= ~(cx[i] & cy[j])
    chips = np.asarray(chips, dtype=np.int64).reshape(-1, 4)
    return chips, np.asarray(counts, dtype=np.int64), uncoverable


def in_range(boxes: np.ndarray, valid_range: Sequence[float]) -> np.ndarray:
    """(N,) bool: sqrt(area) of each x1y1x2y2 box (original pixels) lies in [lo, hi]."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) *
                   np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
    return (side >= valid_range[0]) & (side <= valid_range[1])


def scaled_size(width: float, height: float, scale: float) -> Tuple[int, int]:
    """Integer size of the image at ``scale`` (what :class:`SNIPERChipCrop` produces)."""
    return max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)


def positive_chips(width: float, height: float, boxes: np.ndarray, scale: float,
                   valid_range: Sequence[float], chip_size: int, stride: int,
                   ignore: Optional[np.ndarray] = None) -> np.ndarray:
    """Positive chips (scaled pixels, x1y1x2y2) of one image at one scale.

    Args:
        width, height: original image size.
        boxes: (N, 4) ground-truth boxes, original pixels.
        scale: the numeric scale.
        valid_range: (lo, hi) of sqrt(area) in original pixels.
        chip_size, stride: K and d.
        ignore: (N,) bool, boxes the annotation already marks as ignore (never chip targets).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    valid = in_range(boxes, valid_range)
    if ignore is not None:
        valid &= ~np.asarray(ignore, dtype=bool)
    w, h = scaled_size(width, height, scale)
    chips, _, _ = greedy_chips(boxes[valid] * scale, w, h, chip_size, stride)
    return chips


def negative_chips(width: float, height: float, proposals: np.ndarray, pos_chips: np.ndarray,
                   scale: float, valid_range: Sequence[float], chip_size: int, stride: int,
                   max_proposals: int = 300, min_proposals: int = 10) -> np.ndarray:
    """Negative chips (scaled pixels) of one image at one scale, from RPN proposals.

    The top ``max_proposals`` proposals (by score when a 5th column holds it) in the scale's
    range that lie fully inside no positive chip are covered greedily; a chip is kept when it
    holds more than ``min_proposals`` of them. Such a chip may overlap a positive chip, but every
    proposal it is counted for lies outside all positive chips.
    """
    props = np.asarray(proposals, dtype=np.float64)
    props = props.reshape(-1, props.shape[-1] if props.ndim == 2 else 4)
    if props.shape[1] >= 5:
        props = props[np.argsort(-props[:, 4], kind='stable')]
    props = props[:max_proposals, :4]
    props = props[in_range(props, valid_range)] * scale
    pos = np.asarray(pos_chips).reshape(-1, 4)
    if len(pos) and len(props):
        inside = ((props[None, :, 0] >= pos[:, None, 0]) & (props[None, :, 1] >= pos[:, None, 1])
                  & (props[None, :, 2] <= pos[:, None, 2]) &
                  (props[None, :, 3] <= pos[:, None, 3]))
        props = props[~inside.any(0)]
    w, h = scaled_size(width, height, scale)
    chips, _, _ = greedy_chips(props, w, h, chip_size, stride, min_count=min_proposals)
    return chips


def chip_annotations(chip: Sequence[int], scale: float, boxes: np.ndarray, valid: np.ndarray,
                     min_box_size: float) -> Tuple[np.ndarray, np.ndarray]:
    """Which boxes a chip keeps, clipped, and which of them are ignore regions.

    Args:
        chip: x1y1x2y2 in scaled pixels.
        scale: the chip's numeric scale.
        boxes: (N, 4) boxes, original pixels.
        valid: (N,) bool, box is a training target at this scale (in range, not ignored).
        min_box_size: boxes whose clipped width or height is under this many chip pixels are
            dropped.

    Returns:
        index (M,) of kept boxes, their clipped boxes (M, 4) in original pixels, and ignore
        (M,) bool (True: not valid at this scale -> ignore region).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    region = np.asarray(chip, dtype=np.float64) / scale
    clipped = np.concatenate([np.maximum(boxes[:, :2], region[:2]),
                              np.minimum(boxes[:, 2:], region[2:])], axis=1)
    size = (clipped[:, 2:] - clipped[:, :2]) * scale
    keep = np.flatnonzero((size >= min_box_size).all(1) & (size > 0).all(1))
    return keep, clipped[keep], ~np.asarray(valid, dtype=bool)[keep]


def image_chips(width: float, height: float, boxes: np.ndarray, ignore: np.ndarray,
                scales: Sequence[Scale], valid_ranges: Sequence[Sequence[float]],
                chip_size: int, stride: int,
                proposals: Optional[Sequence[np.ndarray]] = None,
                neg_max_proposals: int = 300,
                neg_min_proposals: Sequence[int] = (25, 10, 10)) -> Dict[str, np.ndarray]:
    """All positive (and, given proposals, negative) chips of one image.

    Args:
        width, height: original image size.
        boxes, ignore: (N, 4) boxes in original pixels and (N,) bool annotated-ignore flags.
        scales, valid_ranges, chip_size, stride: as :func:`check_sniper_params`.
        proposals: one (P, 4|5) array per scale (or a single array used at every scale), original
            pixels; None: no negative chips.
        neg_max_proposals, neg_min_proposals: as :func:`negative_chips`, the latter per scale.

    Returns:
        dict of ``chips`` (M, 4) scaled-pixel boxes, ``scale_index`` (M,), ``scale`` (M,) and
        ``negative`` (M,) bool; positives first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ignore = np.asarray(ignore, dtype=bool).reshape(-1)
    parts = []
    for k, (s, rng) in enumerate(zip(scales, valid_ranges)):
        scale = resolve_scale(s, width, height, chip_size)
        pos = positive_chips(width, height, boxes, scale, rng, chip_size, stride, ignore)
        parts.append((pos, k, scale, False))
        if proposals is not None:
            props = proposals[k] if isinstance(proposals, (list, tuple)) else proposals
            neg = negative_chips(width, height, np.asarray(props), pos, scale, rng, chip_size,
                                 stride, neg_max_proposals, neg_min_proposals[k])
            parts.append((neg, k, scale, True))
    chips = np.concatenate([p[0] for p in parts]).reshape(-1, 4)
    n = [len(p[0]) for p in parts]
    neg = np.repeat([p[3] for p in parts], n).astype(bool)
    order = np.argsort(neg, kind='stable')  # positives first
    return dict(chips=chips[order], scale_index=np.repeat([p[1] for p in parts], n)[order],
                scale=np.repeat([p[2] for p in parts], n).astype(np.float64)[order],
                negative=neg[order])


def _instance_arrays(instances: List[dict]) -> Tuple[np.ndarray, np.ndarray]:
    boxes = np.array([i['bbox'] for i in instances], dtype=np.float64).reshape(-1, 4)
    ignore = np.array([bool(i.get('ignore_flag', 0)) for i in instances], dtype=bool)
    return boxes, ignore


# --------------------------------------------------------------------------- dataset wrapper
@DATASETS.register_module()
class SNIPERDataset:
    """Wraps any mmdet dataset so that its items are SNIPER chips, not images.

    The inner dataset keeps its own pipeline, which must contain :class:`SNIPERChipCrop` after
    ``LoadAnnotations``; an item is the inner image's data info with its chip in
    ``sniper_chip`` and its instances replaced by the chip's (clipped boxes, ignore flags).

    Epochs: ``len()`` is fixed -- all positive chips plus ``min(available, neg_per_image)``
    negative slots per image -- so mmengine's ``DefaultSampler`` works unchanged. Which negative
    chip fills a slot is a deterministic choice seeded by (``seed``, epoch, image), and the
    epoch comes from :class:`SNIPEREpochHook` (``set_epoch``). Dataloader workers copy the
    dataset when they start, so configs use ``persistent_workers=False`` to make workers see
    the new epoch; with persistent workers every epoch reuses epoch 0's negatives.

    Args:
        dataset: the inner dataset (config or object), e.g. a ``CocoDataset``.
        chip_size: chip side K in pixels (paper: 512).
        stride: chip grid step d (paper: 32); ``chip_size`` must be a multiple of it.
        scales: numeric scales and/or ``'fit'`` (K / max side), finest first.
        valid_ranges: per scale, (lo, hi) of sqrt(box area) in original pixels.
        min_box_size: clipped boxes under this many chip pixels are dropped (paper: 10).
        proposal_file: ``.npz`` written by ``tools/sniper_proposals.py`` (per image and scale,
            (P, 5) proposals; :mod:`mmext.datasets.proposal_io`, read without pickle); None: no
            negative chips (the paper's first, RPN-only stage).
        neg_per_image: negative chips sampled per image and epoch (paper: 2).
        neg_max_proposals: top proposals used per scale (paper: 300).
        neg_min_proposals: per scale, a negative chip must hold more proposals than this.
        seed: seed of the negative-chip choice.
        lazy_init: build the chips on first use instead of at construction.
    """

    def __init__(self, dataset, chip_size: int = 512, stride: int = 32,
                 scales: Sequence[Scale] = SNIPER_COCO['scales'],
                 valid_ranges: Sequence[Sequence[float]] = SNIPER_COCO['valid_ranges'],
                 min_box_size: float = 10, proposal_file: Optional[str] = None,
                 neg_per_image: int = 2, neg_max_proposals: int = 300,
                 neg_min_proposals: Sequence[int] = (25, 10, 10), seed: int = 0,
                 lazy_init: bool = False):
        check_sniper_params(chip_size, stride, scales, valid_ranges, min_box_size)
        if len(neg_min_proposals) != len(scales):
            raise ValueError(f'neg_min_proposals={tuple(neg_min_proposals)} needs one count '
                             f'per scale ({len(scales)})')
        if neg_per_image < 0 or neg_max_proposals < 0:
            raise ValueError(f'neg_per_image={neg_per_image} and neg_max_proposals='
                             f'{neg_max_proposals} must be >= 0')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.chip_size, self.stride = chip_size, stride
        self.scales = tuple(scales)
        self.valid_ranges = tuple(tuple(float(v) for v in r) for r in valid_ranges)
        self.min_box_size = min_box_size
        self.proposal_file = proposal_file
        self.neg_per_image = neg_per_image
        self.neg_max_proposals = neg_max_proposals
        self.neg_min_proposals = tuple(neg_min_proposals)
        self.seed = seed
        self.epoch = 0
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    def set_epoch(self, epoch: int) -> None:
        """Select the negative chips of ``epoch`` (called by :class:`SNIPEREpochHook`)."""
        self.epoch = int(epoch)

    def _load_proposals(self) -> Optional[dict]:
        if self.proposal_file is None:
            return None
        saved, props = load_proposals(self.proposal_file)  # .npz, never unpickled
        if saved is not None and tuple(saved) != self.scales:
            raise ValueError(f'{self.proposal_file} holds proposals for scales {tuple(saved)}, '
                             f'this dataset uses {self.scales}')
        return props

    def full_init(self) -> None:
        """Generate every image's chips (vectorised per image, see module doc)."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        proposals = self._load_proposals()
        pos_img, pos_chip, pos_scale, pos_k = [], [], [], []
        self._neg = {}  # image index -> (chips (n, 4), scales (n,), scale indices (n,))
        for idx in range(len(self.dataset)):
            info = self.dataset.get_data_info(idx)
            boxes, ignore = _instance_arrays(info.get('instances', []))
            props = None
            if proposals is not None:
                props = proposals.get(info['img_id'], np.zeros((0, 5)))
            c = image_chips(info['width'], info['height'], boxes, ignore, self.scales,
                            self.valid_ranges, self.chip_size, self.stride, props,
                            self.neg_max_proposals, self.neg_min_proposals)
            p = ~c['negative']
            pos_img.append(np.full(int(p.sum()), idx))
            pos_chip.append(c['chips'][p])
            pos_scale.append(c['scale'][p])
            pos_k.append(c['scale_index'][p])
            if (~p).any():
                self._neg[idx] = (c['chips'][~p], c['scale'][~p], c['scale_index'][~p])
        self._pos_img = np.concatenate(pos_img).astype(np.int64) if pos_img else np.zeros(0, int)
        self._pos_chip = np.concatenate(pos_chip).reshape(-1, 4) if pos_chip else np.zeros(
            (0, 4), int)
        self._pos_scale = np.concatenate(pos_scale) if pos_scale else np.zeros(0)
        self._pos_k = np.concatenate(pos_k).astype(np.int64) if pos_k else np.zeros(0, int)
        # negative slots: (image, j) for j < min(available, neg_per_image)
        slots = [(i, j) for i, (ch, _, _) in sorted(self._neg.items())
                 for j in range(min(len(ch), self.neg_per_image))]
        self._neg_slots = np.asarray(slots, dtype=np.int64).reshape(-1, 2)
        self._fully_initialized = True

    @property
    @force_full_init
    def num_positive(self) -> int:
        return len(self._pos_img)

    @force_full_init
    def __len__(self) -> int:
        return len(self._pos_img) + len(self._neg_slots)

    @force_full_init
    def get_chip(self, idx: int) -> Tuple[int, np.ndarray, float, int, bool]:
        """(image index, chip x1y1x2y2 in scaled pixels, scale, scale index, negative) of item
        ``idx``."""
        if not -len(self) <= idx < len(self):
            raise IndexError(f'chip index {idx} out of range for {len(self)} chips')
        idx = idx % len(self)
        if idx < len(self._pos_img):
            return (int(self._pos_img[idx]), self._pos_chip[idx], float(self._pos_scale[idx]),
                    int(self._pos_k[idx]), False)
        img, j = self._neg_slots[idx - len(self._pos_img)]
        chips, scales, ks = self._neg[int(img)]
        key = f'{self.seed}/{self.epoch}/{int(img)}'.encode()
        rng = np.random.RandomState(zlib.crc32(key) & 0x7FFFFFFF)
        pick = rng.permutation(len(chips))[j]
        return int(img), chips[pick], float(scales[pick]), int(ks[pick]), True

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The inner image's data info with this chip's instances and ``sniper_chip``."""
        img, chip, scale, k, negative = self.get_chip(idx)
        info = self.dataset.get_data_info(img)
        instances = info.get('instances', [])
        boxes, ignore = _instance_arrays(instances)
        valid = in_range(boxes, self.valid_ranges[k]) & ~ignore
        keep, clipped, ign = chip_annotations(chip, scale, boxes, valid, self.min_box_size)
        new = []
        for i, box, flag in zip(keep, clipped, ign):
            inst = dict(instances[i])
            inst['bbox'] = [float(v) for v in box]
            inst['ignore_flag'] = int(flag)
            inst.pop('mask', None)  # chips carry boxes only
            new.append(inst)
        info['instances'] = new
        info['sniper_chip'] = dict(box=[int(v) for v in chip], scale=scale, scale_index=k,
                                   negative=negative)
        return info

    def __getitem__(self, idx: int) -> dict:
        return self.dataset.pipeline(self.get_data_info(idx))


@HOOKS.register_module()
class SNIPEREpochHook(Hook):
    """Tells a :class:`SNIPERDataset` (found through ``.dataset`` attributes) the epoch, so it
    samples that epoch's negative chips. Runs before the epoch's dataloader iterator (and its
    workers) is created."""

    def before_train_epoch(self, runner) -> None:
        ds = runner.train_dataloader.dataset
        while ds is not None and not hasattr(ds, 'set_epoch'):
            ds = getattr(ds, 'dataset', None)
        if ds is not None:
            ds.set_epoch(runner.epoch)
