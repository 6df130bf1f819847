"""SNIPER chips: which 512x512 pieces of which image scales a detector is trained on.

Singh, Najibi, Davis, "SNIPER: Efficient Multi-Scale Training", NeurIPS 2018 (arXiv:1805.09300);
the rules follow the official code, mahyarnajibi/SNIPER (MXNet): ``lib/chips/cchips.cpp``
(``cgenerate``), ``lib/data_utils/data_workers.py`` (``chip_worker.chip_extractor``,
``chip_worker.box_assigner``, ``anchor_worker.worker``) and ``lib/iterators/MNIteratorE2E.py``
(``reset``), with ``configs/faster/sniper_res101_e2e.yml``'s settings.

Instead of whole images at three scales, SNIPER trains on fixed-size *chips*:

* boxes are clipped to the image; per image and scale, candidate K x K chips lie on a d-pixel
  grid of the scaled image (the last row/column is moved so chips end at the image border; an
  image smaller than a chip has one chip at the origin, and the batch padding fills the rest);
  the official d is drawn per epoch, ``randint(56, 60)`` (the paper says 32);
* a box is *valid* at a scale by the official rules (:func:`valid_boxes`): sqrt(area), in
  original pixels, in that scale's range, and at the finer scales a longest side under
  (K - d - 1) / s (it fits a chip) and width and height >= 2 px; positive chips are taken
  greedily -- always the chip fully containing the most still-uncovered valid boxes, ties in a
  seeded random order -- until every valid box lies entirely inside some chip;
* every valid box is assigned to *one* chip (the first chosen one containing it); inside a chip,
  every box that meets it is clipped to it and dropped under ``min_box_size`` chip pixels; the
  boxes assigned to the chip are targets, all others -- pieces of boxes assigned elsewhere, boxes
  invalid at the scale -- are *ignore regions* (``ignore_flag=1``, mmdet's ``gt_ignore_flags``),
  not background;
* negative chips come from RPN proposals (``tools/sniper_proposals.py``), pooled over scales:
  those valid at the scale that overlap no positive chip are covered greedily, keeping chips
  holding more than ``neg_min_proposals`` of them; ``neg_per_image`` are sampled per image and
  epoch.

Scales are listed finest first, as the official config lists them (its ``SCALES`` 1400x2000,
800x1280, 512x512 pair with ``VALID_RANGES`` [0,80], [32,150], [120,inf)); ``'fit'`` is the
image-dependent scale chip_size / max(w, h) -- the paper's 512/max(w, h), the coarsest.

Chip generation is vectorised: the grid is a product of x and y start positions, so "chip (i, j)
contains box b" is ``cx[i, b] & cy[j, b]`` and the number of uncovered boxes in every chip is the
matrix product ``cx[:, u] @ cy[:, u].T``; the greedy loop runs once per *selected chip*, never
per box.
"""
import copy
import math
import warnings
import zlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.registry import DATA_SAMPLERS
from mmengine.dataset import force_full_init
from mmengine.hooks import Hook
from torch.utils.data import Sampler

from ..registry import DATASETS, HOOKS
from .proposal_io import load_proposals

INF = float('inf')
Scale = Union[float, str]

# The COCO set-up of the official configs/faster/sniper_res101_e2e.yml (and the paper). Ranges
# are sqrt(box area) in original pixels, paired with the scales in order (finest first).
SNIPER_COCO = dict(
    chip_size=512,
    stride=(56, 60),  # official: np.random.randint(56, 60) per epoch (the paper: 32)
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

    Rules: the stride is a positive int or a pair (lo, hi) to draw from, at most the chip size
    (the official stride, 56-59 px, does not divide the 512 px chip); scales are positive numbers
    listed finest first (strictly decreasing), with ``'fit'`` allowed only last; one range per
    scale, each ``0 <= lo < hi``; ranges move up with coarser scales (lo and hi non-decreasing) and
    neighbours overlap or touch, so every object size is valid at some scale; the largest valid
    box of a numeric scale fits in a chip (hi * scale <= chip_size).

    Raises:
        ValueError or TypeError describing the first violated rule.
    """
    if not isinstance(chip_size, int) or chip_size <= 0:
        raise TypeError(f'chip_size={chip_size!r} must be a positive int')
    strides = (stride, ) if isinstance(stride, int) else tuple(stride)
    if (not 1 <= len(strides) <= 2 or not all(isinstance(v, int) for v in strides)
            or any(v <= 0 for v in strides) or (len(strides) == 2 and strides[0] >= strides[1])
            or strides[-1] > chip_size):
        raise ValueError(f'stride={stride!r} must be a positive int or a pair (lo, hi) of ints, '
                         f'lo < hi, drawn as randint(lo, hi) per epoch; at most '
                         f'chip_size={chip_size}')
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
    (The official ``cgenerate`` in ``lib/chips/cchips.cpp`` uses the same grid in inclusive pixel
    coordinates; its border chips start one pixel earlier, ``width - chipsize - 1``, except in the
    corners.)
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


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Boxes (x1y1x2y2) clipped to the ``width`` x ``height`` image; NaN stays NaN.

    The official chip generator clips every box to the image before matching chips
    (``lib/chips/chip_generator.py``, ``clip_boxes``): a box partly outside the image is covered
    through its visible part. Boxes with a non-finite coordinate become all NaN.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    lim = np.array([width, height, width, height], dtype=np.float64)
    out = np.minimum(np.maximum(boxes, 0), lim)
    out[~np.isfinite(boxes).all(1)] = np.nan  # an infinite coordinate is no box either
    return out


def usable(boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: finite coordinates and positive width and height (zero-area, inverted and NaN
    boxes can never be training targets nor create chips)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    # comparisons with NaN are False: a NaN box fails them
    return np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def greedy_chips(boxes: np.ndarray, img_w: int, img_h: int, chip_size: int, stride: int,
                 min_count: int = 0, rng: Optional[np.random.RandomState] = None,
                 return_assignment: bool = False):
    """Greedy set cover of ``boxes`` (scaled pixels, x1y1x2y2) by grid chips.

    Boxes are first clipped to the ``img_w`` x ``img_h`` scaled image (one rounding rule: that
    size is :func:`scaled_size`'s, the size :class:`SNIPERChipCrop` produces), so a box on the
    bottom or right border is never lost to rounding. Then the chip that fully contains the most
    not yet covered boxes is taken repeatedly until every coverable box is covered or the best
    chip would cover no more than ``min_count`` new boxes (official ``cgenerate``,
    ``lib/chips/cchips.cpp``). Ties: the official code shuffles the candidate chips
    (``random_shuffle``) and takes the first best one; with ``rng`` the same (a seeded random
    order), without it the lowest y, then x start.

    Args:
        boxes: (N, 4) boxes in the scaled image.
        img_w, img_h: size of the scaled image (integers).
        chip_size, stride: chip side K and grid step d.
        min_count: a chip is kept only when it newly covers more than this many boxes.
        rng: random state for the tie order; None: deterministic.
        return_assignment: also return, per box, the index of the chip that covered it (-1:
            none) -- the first chosen chip that fully contains it.

    Returns:
        chips (M, 4) int x1y1x2y2 (clipped to the scaled image), the number of boxes each chip
        newly covered (M,), a (N,) bool mask of boxes no chip can contain (too large or
        degenerate) and, with ``return_assignment``, the (N,) assignment.
    """
    xs = chip_starts(img_w, chip_size, stride)
    ys = chip_starts(img_h, chip_size, stride)
    boxes = clip_boxes(boxes, img_w, img_h)
    ok = usable(boxes)
    cx = _contains_1d(xs, boxes[:, 0], boxes[:, 2], chip_size) & ok[None]
    cy = _contains_1d(ys, boxes[:, 1], boxes[:, 3], chip_size) & ok[None]
    uncoverable = ~(cx.any(0) & cy.any(0))
    todo = ~uncoverable
    assigned = np.full(len(boxes), -1, dtype=np.int64)
    n_cells = len(xs) * len(ys)
    bonus = None
    if rng is not None and n_cells > 1:
        # a random priority per chip breaks ties as the official shuffled candidate list does
        bonus = (rng.permutation(n_cells).reshape(len(ys), len(xs)) / n_cells)
    chips, counts = [], []
    cxf, cyf = cx.astype(np.float32), cy.astype(np.float32)
    while todo.any():
        # grid[j, i]: uncovered boxes inside the chip starting at (xs[i], ys[j])
        grid = cyf[:, todo] @ cxf[:, todo].T
        score = grid if bonus is None else np.rint(grid) + bonus
        j, i = np.unravel_index(int(np.argmax(score)), grid.shape)
        best = int(round(grid[j, i]))
        if best <= min_count:
            break
        newly = todo & cx[i] & cy[j]
        assigned[newly] = len(chips)
        chips.append((xs[i], ys[j], min(xs[i] + chip_size, img_w),
                      min(ys[j] + chip_size, img_h)))
        counts.append(best)
        todo &= ~newly
    chips = np.asarray(chips, dtype=np.int64).reshape(-1, 4)
    counts = np.asarray(counts, dtype=np.int64)
    if return_assignment:
        return chips, counts, uncoverable, assigned
    return chips, counts, uncoverable


def in_range(boxes: np.ndarray, valid_range: Sequence[float]) -> np.ndarray:
    """(N,) bool: sqrt(area) of each x1y1x2y2 box (original pixels) lies in [lo, hi]."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) *
                   np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
    return (side >= valid_range[0]) & (side <= valid_range[1])


def box_stats(boxes: np.ndarray) -> Tuple[np.ndarray, ...]:
    """(usable, w, h, sqrt(w * h), max(w, h)) of (N, 4) boxes; 0 for unusable boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ok = usable(boxes)
    w = np.where(ok, boxes[:, 2] - boxes[:, 0], 0)
    h = np.where(ok, boxes[:, 3] - boxes[:, 1], 0)
    return ok, w, h, np.sqrt(w * h), np.maximum(w, h)


def valid_boxes(boxes, k: int, n_scales: int, scale: float,
                valid_range: Sequence[float], chip_size: int, stride: int,
                rule: str = 'chips') -> np.ndarray:
    """(N,) bool: boxes (original pixels, already clipped to the image) valid at scale ``k``.

    The official rules (``lib/data_utils/data_workers.py``), with ``side`` = sqrt(w * h) and
    ``longest`` = max(w, h) in original pixels:

    * ``rule='chips'`` -- which boxes positive chips must cover (``chip_worker.chip_extractor``):
      the coarsest scale ``side >= lo``; the finest ``side < hi``, ``longest < (K - d - 1) / s``
      and ``w, h >= 2``; an intermediate one ``lo <= side < hi`` and ``longest < (K - d - 1) /
      s``. (The official finest and coarsest ranges are open-ended, ``-1``; a finite ``lo`` at
      the finest or ``hi`` at the coarsest scale is applied here too.)
    * ``rule='assign'`` -- which boxes (ground truth or proposals) are assigned to a chip of the
      scale (``chip_worker.box_assigner``): the coarsest ``side >= lo``; every other scale
      ``side < hi``, ``longest < (K - d - 1) / s`` and ``w, h >= 2`` -- no lower bound there.

    ``boxes`` may also be :func:`box_stats` of them (computed once for all scales). The
    longest-side rule keeps a box that fits no chip (a 400x20 box at scale 3) from being
    valid by its area. Zero-area, inverted and NaN boxes are never valid. The official code
    truncates widths to integers first (``astype(np.int32)``); here they stay real.
    """
    if rule not in ('chips', 'assign'):
        raise ValueError(f"rule={rule!r} must be 'chips' or 'assign'")
    ok, w, h, side, longest = boxes if isinstance(boxes, tuple) else box_stats(boxes)
    lo, hi = valid_range
    last = k == n_scales - 1
    if last:
        return ok & (side >= lo) & (side < hi)
    fits = longest < (chip_size - stride - 1) / scale
    valid = ok & (side < hi) & fits
    if rule == 'chips':
        valid &= side >= lo
        if k == 0:
            valid &= (w >= 2) & (h >= 2)
    else:
        valid &= (w >= 2) & (h >= 2)
    return valid


def scaled_size(width: float, height: float, scale: float) -> Tuple[int, int]:
    """Integer size of the image at ``scale`` (what :class:`SNIPERChipCrop` produces)."""
    return max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)


def max_iof_assign(chips: np.ndarray, scale: float, boxes: np.ndarray, is_last: bool,
                   valid_range: Sequence[float]) -> np.ndarray:
    """(N,) index of the chip each box (original pixels) is assigned to, -1 for none.

    Official ``chip_worker.box_assigner``: a box goes to the chip (of its scale, scaled pixels)
    with the largest intersection-over-box-area, the first of them in chip order -- for a box some
    chip fully contains, the first such chip -- provided the intersection is at least 1 px wide
    and high (original pixels) and its sqrt(area) is ``>= lo`` at the coarsest scale or ``<= hi``
    at the others.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.full(len(boxes), -1, dtype=np.int64)
    if len(chips) == 0 or len(boxes) == 0:
        return out
    region = np.asarray(chips, dtype=np.float64).reshape(-1, 4) / scale
    x1 = np.maximum(region[:, None, 0], boxes[None, :, 0])
    y1 = np.maximum(region[:, None, 1], boxes[None, :, 1])
    x2 = np.minimum(region[:, None, 2], boxes[None, :, 2])
    y2 = np.minimum(region[:, None, 3], boxes[None, :, 3])
    iw, ih = np.clip(x2 - x1, 0, None), np.clip(y2 - y1, 0, None)
    area = np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-12, None)
    iof = iw * ih / area[None]
    best = np.argmax(iof, axis=0)
    cols = np.arange(len(boxes))
    bw, bh = iw[best, cols], ih[best, cols]
    side = np.sqrt(bw * bh)
    ok = (bw >= 1) & (bh >= 1)
    ok &= (side >= valid_range[0]) if is_last else (side <= valid_range[1])
    out[ok] = best[ok]
    return out


def positive_chips(width: float, height: float, boxes: np.ndarray, scale: float,
                   valid_range: Sequence[float], chip_size: int, stride: int,
                   ignore: Optional[np.ndarray] = None, k: int = 0, n_scales: int = 1,
                   rng: Optional[np.random.RandomState] = None,
                   return_assignment: bool = False, _clipped: Optional[tuple] = None):
    """Positive chips (scaled pixels, x1y1x2y2) of one image at scale ``k`` of ``n_scales``.

    Boxes are clipped to the image, those valid by :func:`valid_boxes` (``'chips'``) are covered
    greedily (:func:`greedy_chips`); then every box valid by the ``'assign'`` rule is assigned to
    one chip (:func:`max_iof_assign`; a covered box to the chip that covered it).

    Args:
        width, height: original image size.
        boxes: (N, 4) ground-truth boxes, original pixels.
        scale: the numeric scale.
        valid_range: (lo, hi) of sqrt(area) in original pixels.
        chip_size, stride: K and d.
        ignore: (N,) bool, boxes the annotation already marks as ignore (never chip targets).
        k, n_scales: which scale this is (finest 0), for the validity rules.
        rng: tie order of the greedy cover (None: deterministic).
        return_assignment: also return the (N,) chip index of each box (-1: none).
    """
    # _clipped: (clipped boxes, their box_stats) shared by image_chips' scales
    boxes, stats = _clipped if _clipped is not None else (clip_boxes(boxes, width, height), None)
    stats = box_stats(boxes) if stats is None else stats
    allowed = np.ones(len(boxes), bool) if ignore is None else ~np.asarray(ignore, dtype=bool)
    valid = valid_boxes(stats, k, n_scales, scale, valid_range, chip_size, stride) & allowed
    w, h = scaled_size(width, height, scale)
    chips, _, _, got = greedy_chips(boxes[valid] * scale, w, h, chip_size, stride, rng=rng,
                                    return_assignment=True)
    if not return_assignment:
        return chips
    assign = np.full(len(boxes), -1, dtype=np.int64)
    assign[np.flatnonzero(valid)] = got
    rest = valid_boxes(stats, k, n_scales, scale, valid_range, chip_size, stride,
                       'assign') & allowed & (assign < 0)
    if rest.any():
        assign[rest] = max_iof_assign(chips, scale, boxes[rest], k == n_scales - 1,
                                      valid_range)
    return chips, assign


def _top_proposals(proposals, max_proposals: int) -> np.ndarray:
    props = np.asarray(proposals, dtype=np.float64)
    props = props.reshape(-1, props.shape[-1] if props.ndim == 2 else 4)
    if props.shape[1] >= 5:
        props = props[np.argsort(-props[:, 4], kind='stable')]
    return props[:max_proposals, :4]


def pool_proposals(proposals, max_proposals: int = 300) -> np.ndarray:
    """All scales' proposals of one image in one (P, 4) array, the top ``max_proposals`` of each
    scale (by score when a 5th column holds it). The official roidb holds one list of proposals
    per image (``TEST.N_PROPOSAL_PER_SCALE`` = 300 from each scale) and every scale filters it by
    its own rules (``chip_worker.box_assigner``)."""
    if proposals is None:
        return np.zeros((0, 4))
    if not isinstance(proposals, (list, tuple)):
        proposals = [proposals]
    parts = [_top_proposals(p, max_proposals) for p in proposals if p is not None]
    return np.concatenate(parts).reshape(-1, 4) if parts else np.zeros((0, 4))


def negative_chips(width: float, height: float, proposals: np.ndarray, pos_chips: np.ndarray,
                   scale: float, valid_range: Sequence[float], chip_size: int, stride: int,
                   max_proposals: int = 300, min_proposals: int = 10, k: int = 0,
                   n_scales: int = 1,
                   rng: Optional[np.random.RandomState] = None) -> np.ndarray:
    """Negative chips (scaled pixels) of one image at scale ``k``, from RPN proposals.

    Official ``chip_worker.box_assigner``: the proposals (original pixels; a (P, 5) array is cut
    to its top ``max_proposals`` by score) valid at the scale (:func:`valid_boxes`, ``'assign'``)
    that are assigned to no positive chip -- i.e. that *overlap* none by at least 1 px in the
    assignment's sense (:func:`max_iof_assign`) -- are covered greedily; each of them is then
    assigned to one of those chips by the same rule, and a chip is kept when more than
    ``min_proposals`` are assigned to it (official: > 25 at the finest scale, > 10 elsewhere).
    """
    props = clip_boxes(_top_proposals(proposals, max_proposals), width, height)
    last = k == n_scales - 1
    props = props[valid_boxes(props, k, n_scales, scale, valid_range, chip_size, stride,
                              'assign')]
    pos = np.asarray(pos_chips).reshape(-1, 4)
    if len(pos) and len(props):
        props = props[max_iof_assign(pos, scale, props, last, valid_range) < 0]
    if len(props) == 0:
        return np.zeros((0, 4), dtype=np.int64)
    w, h = scaled_size(width, height, scale)
    # A proposal some chosen chip fully contains goes (first chip of maximum IoF) to the chip
    # that newly covered it, so a chip's count is its greedy count; those counts only decrease,
    # so the cover stops at the first chip with too few -- the official code generates them all
    # and drops those. Proposals no chip can contain (none at the finer scales, by the
    # longest-side rule) are added to the chip of maximum IoF among the kept ones.
    chips, counts, uncoverable = greedy_chips(props * scale, w, h, chip_size, stride,
                                              min_count=min_proposals, rng=rng)
    if uncoverable.any() and len(chips):
        owner = max_iof_assign(chips, scale, props[uncoverable], last, valid_range)
        counts = counts + np.bincount(owner[owner >= 0], minlength=len(chips))
    return chips[counts > min_proposals]


def chip_annotations(chip: Sequence[int], scale: float, boxes: np.ndarray, valid: np.ndarray,
                     min_box_size: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which boxes a chip keeps, clipped, and which of them are ignore regions.

    Official ``anchor_worker.worker``: every ground-truth box is clipped to the chip and dropped
    under ``min_box_size`` chip pixels (``filter_boxes(gt_boxes, 10)``); a kept box is a target
    only when it was *assigned to this chip* (``valid``), otherwise -- a piece of a box assigned
    to another chip, or a box invalid at this scale -- it is an ignore region (the official RPN
    ignores anchors overlapping it, ``labels[max_overlapsn > 0.3] = -1``).

    Args:
        chip: x1y1x2y2 in scaled pixels.
        scale: the chip's numeric scale.
        boxes: (N, 4) boxes, original pixels.
        valid: (N,) bool, box is assigned to this chip (a training target).
        min_box_size: boxes whose clipped width or height is under this many chip pixels are
            dropped.

    Returns:
        index (M,) of kept boxes, their clipped boxes (M, 4) in original pixels, and ignore
        (M,) bool (True: not a target of this chip -> ignore region).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    region = np.asarray(chip, dtype=np.float64) / scale
    clipped = np.concatenate([np.maximum(boxes[:, :2], region[:2]),
                              np.minimum(boxes[:, 2:], region[2:])], axis=1)
    size = (clipped[:, 2:] - clipped[:, :2]) * scale
    keep = np.flatnonzero(usable(boxes) & (size >= min_box_size).all(1) & (size > 0).all(1))
    return keep, clipped[keep], ~np.asarray(valid, dtype=bool)[keep]


def image_chips(width: float, height: float, boxes: np.ndarray, ignore: np.ndarray,
                scales: Sequence[Scale], valid_ranges: Sequence[Sequence[float]],
                chip_size: int, stride: int,
                proposals: Optional[Sequence[np.ndarray]] = None,
                neg_max_proposals: int = 300,
                neg_min_proposals: Sequence[int] = (25, 10, 10),
                rng: Optional[np.random.RandomState] = None) -> Dict[str, np.ndarray]:
    """All positive (and, given proposals, negative) chips of one image.

    Args:
        width, height: original image size.
        boxes, ignore: (N, 4) boxes in original pixels and (N,) bool annotated-ignore flags.
        scales, valid_ranges, chip_size: as :func:`check_sniper_params`.
        stride: the grid step (an int: the epoch's drawn stride).
        proposals: one (P, 4|5) array per scale (or a single array), original pixels, pooled
            over scales (:func:`pool_proposals`) as the official code does; None: no negative
            chips.
        neg_max_proposals, neg_min_proposals: as :func:`negative_chips`, the latter per scale.
        rng: tie order of the greedy covers (None: deterministic).

    Returns:
        dict of ``chips`` (M, 4) scaled-pixel boxes, ``scale_index`` (M,), ``scale`` (M,),
        ``negative`` (M,) bool (positives first) and ``assign`` (N, n_scales): per box and
        scale, the index in ``chips`` of the positive chip it is a target of (-1: none).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ignore = np.asarray(ignore, dtype=bool).reshape(-1)
    n = len(scales)
    pool = None
    if proposals is not None:
        # official roidb 'boxes': the ground truth and the pooled proposals together
        pool = np.concatenate([boxes[~ignore], pool_proposals(proposals, neg_max_proposals)])
    pos_parts, neg_parts, assigns = [], [], []
    offset = 0
    clipped = clip_boxes(boxes, width, height)
    shared = (clipped, box_stats(clipped))
    for k, (s, rng_k) in enumerate(zip(scales, valid_ranges)):
        scale = resolve_scale(s, width, height, chip_size)
        pos, a = positive_chips(width, height, boxes, scale, rng_k, chip_size, stride, ignore,
                                k, n, rng, return_assignment=True, _clipped=shared)
        assigns.append(np.where(a >= 0, a + offset, -1))
        offset += len(pos)
        pos_parts.append((pos, k, scale))
        if pool is not None:
            neg = negative_chips(width, height, pool, pos, scale, rng_k, chip_size, stride,
                                 len(pool), neg_min_proposals[k], k, n, rng)
            neg_parts.append((neg, k, scale))
    parts = pos_parts + neg_parts
    chips = np.concatenate([p[0] for p in parts]).reshape(-1, 4).astype(np.int64)
    cnt = [len(p[0]) for p in parts]
    negative = np.repeat([False] * len(pos_parts) + [True] * len(neg_parts), cnt).astype(bool)
    return dict(chips=chips, scale_index=np.repeat([p[1] for p in parts], cnt).astype(np.int64),
                scale=np.repeat([p[2] for p in parts], cnt).astype(np.float64),
                negative=negative,
                assign=np.stack(assigns, 1) if assigns else np.zeros((len(boxes), 0), int))


def _instance_arrays(instances: List[dict]) -> Tuple[np.ndarray, np.ndarray]:
    boxes = np.array([i['bbox'] for i in instances], dtype=np.float64).reshape(-1, 4)
    ignore = np.array([bool(i.get('ignore_flag', 0)) for i in instances], dtype=bool)
    return boxes, ignore


# --------------------------------------------------------------------------- dataset wrapper
def _rng(*key) -> np.random.RandomState:
    """A random state seeded by ``key`` (reproducible, independent of the order of calls)."""
    return np.random.RandomState(zlib.crc32('/'.join(map(str, key)).encode()) & 0x7FFFFFFF)


def _dataset_chain(dataset):
    """``dataset`` and the datasets it wraps (``.dataset`` attributes)."""
    while dataset is not None:
        yield dataset
        dataset = getattr(dataset, 'dataset', None)


def find_sniper_dataset(dataset) -> Optional['SNIPERDataset']:
    """The :class:`SNIPERDataset` in ``dataset``'s wrapper chain, or None."""
    for ds in _dataset_chain(dataset):
        if isinstance(ds, SNIPERDataset):
            return ds
    return None


@DATASETS.register_module()
class SNIPERDataset:
    """Wraps any mmdet dataset so that its items are SNIPER chips, not images.

    The inner dataset keeps its own pipeline, which must contain :class:`SNIPERChipCrop` after
    ``LoadAnnotations``; an item is the inner image's data info with its chip in
    ``sniper_chip`` and its instances replaced by the chip's: the boxes assigned to the chip are
    targets, every other box meeting it (a piece of a box assigned to another chip, a box
    invalid at the chip's scale) is an ignore region (``ignore_flag=1``), as in the official
    ``anchor_worker``.

    Epochs, as the official iterator (``lib/iterators/MNIteratorE2E.py``, ``reset``): every
    epoch re-draws the chip stride (``randint(56, 60)``, ``chip_worker.reset``), regenerates the
    positive chips with a fresh tie order, and samples ``neg_per_image`` of each image's
    negative chips -- all seeded by (``seed``, epoch, image), so reproducible. The number of
    chips may change between epochs; :class:`SNIPERSampler` reads it each epoch and passes the
    epoch inside each index, so dataloader workers -- persistent or not -- build the epoch's
    chips themselves. With another sampler the epoch comes from ``set_epoch``
    (:class:`SNIPEREpochHook`), which refuses persistent workers when chips change per epoch.

    Args:
        dataset: the inner dataset (config or object), e.g. a ``CocoDataset``.
        chip_size: chip side K in pixels (paper: 512).
        stride: chip grid step d: an int, or ``(lo, hi)`` to draw ``randint(lo, hi)`` each
            epoch (official: ``(56, 60)`` for K = 512, the default; the paper says 32).
        scales: numeric scales and/or ``'fit'`` (K / max side), finest first.
        valid_ranges: per scale, (lo, hi) of sqrt(box area) in original pixels.
        min_box_size: clipped boxes under this many chip pixels are dropped (paper: 10).
        proposal_file: ``.npz`` written by ``tools/sniper_proposals.py`` (per image and scale,
            (P, 5) proposals; :mod:`mmext.datasets.proposal_io`, read without pickle), pooled
            over scales as the official code does; None: no negative chips (the paper's first,
            RPN-only stage).
        neg_per_image: negative chips sampled per image and epoch (official: 2).
        neg_max_proposals: top proposals used per scale (official: 300).
        neg_min_proposals: per scale, a negative chip must hold more proposals than this.
        shuffle_ties: break ties of the greedy chip cover in a random (seeded, per epoch)
            order, as the official ``cgenerate`` does; False: lowest y, then x.
        seed: seed of the stride draws, tie orders and negative-chip choice.
        lazy_init: build the chips on first use instead of at construction.
    """

    def __init__(self, dataset, chip_size: int = 512,
                 stride: Union[int, Sequence[int]] = SNIPER_COCO['stride'],
                 scales: Sequence[Scale] = SNIPER_COCO['scales'],
                 valid_ranges: Sequence[Sequence[float]] = SNIPER_COCO['valid_ranges'],
                 min_box_size: float = 10, proposal_file: Optional[str] = None,
                 neg_per_image: int = 2, neg_max_proposals: int = 300,
                 neg_min_proposals: Sequence[int] = (25, 10, 10), shuffle_ties: bool = True,
                 seed: int = 0, lazy_init: bool = False):
        check_sniper_params(chip_size, stride, scales, valid_ranges, min_box_size)
        if len(neg_min_proposals) != len(scales):
            raise ValueError(f'neg_min_proposals={tuple(neg_min_proposals)} needs one count '
                             f'per scale ({len(scales)})')
        if neg_per_image < 0 or neg_max_proposals < 0:
            raise ValueError(f'neg_per_image={neg_per_image} and neg_max_proposals='
                             f'{neg_max_proposals} must be >= 0')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.chip_size = chip_size
        self.stride = stride if isinstance(stride, int) else tuple(int(v) for v in stride)
        self.scales = tuple(scales)
        self.valid_ranges = tuple(tuple(float(v) for v in r) for r in valid_ranges)
        self.min_box_size = min_box_size
        self.proposal_file = proposal_file
        self.neg_per_image = neg_per_image
        self.neg_max_proposals = neg_max_proposals
        self.neg_min_proposals = tuple(neg_min_proposals)
        self.shuffle_ties = bool(shuffle_ties)
        self.seed = seed
        self.epoch = 0
        self._tables = {}
        self._warned_plain_index = False
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    @property
    def resamples(self) -> bool:
        """Whether the chips change between epochs (drawn stride, shuffled ties, negatives)."""
        return (not isinstance(self.stride, int) or self.shuffle_ties
                or (self.proposal_file is not None and self.neg_per_image > 0))

    def set_epoch(self, epoch: int) -> None:
        """Use the chips of ``epoch`` for plain integer indices (:class:`SNIPEREpochHook`)."""
        self.epoch = int(epoch)

    def stride_of(self, epoch: int) -> int:
        """The chip stride of ``epoch`` (drawn as ``np.random.randint(lo, hi)``, seeded)."""
        if isinstance(self.stride, int):
            return self.stride
        return int(_rng(self.seed, 'stride', epoch).randint(*self.stride))

    def _load_proposals(self) -> Optional[dict]:
        if self.proposal_file is None:
            return None
        saved, props = load_proposals(self.proposal_file)  # .npz, never unpickled
        if saved is not None and tuple(saved) != self.scales:
            raise ValueError(f'{self.proposal_file} holds proposals for scales {tuple(saved)}, '
                             f'this dataset uses {self.scales}')
        return props

    def full_init(self) -> None:
        """Read every image's size, boxes and proposals once; build epoch 0's chips."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        proposals = self._load_proposals()
        self._images = []  # (width, height, boxes, ignore, pooled proposals or None)
        matched = 0
        for idx in range(len(self.dataset)):
            info = self.dataset.get_data_info(idx)
            boxes, ignore = _instance_arrays(info.get('instances', []))
            props = None
            if proposals is not None:
                got = proposals.get(info['img_id'])
                matched += got is not None
                props = pool_proposals(got, self.neg_max_proposals)
            self._images.append((float(info['width']), float(info['height']), boxes, ignore,
                                 props))
        if proposals is not None and matched < len(self.dataset):
            warnings.warn(
                f'SNIPERDataset: {self.proposal_file} has proposals for {matched} of the '
                f'{len(self.dataset)} images ({len(proposals)} images in the file); the other '
                f'{len(self.dataset) - matched} get no negative chips (image ids that do not '
                'match, or a file written with --limit?)')
        self._fully_initialized = True
        self._table(self.epoch)

    def _table(self, epoch: int) -> dict:
        """Chips of ``epoch``: positives (with their targets) then the sampled negatives."""
        key = epoch if self.resamples else 0
        if key in self._tables:
            return self._tables[key]
        stride = self.stride_of(key)
        img, chip, scale, k, neg, targets = [], [], [], [], [], []
        for idx, (w, h, boxes, ignore, props) in enumerate(self._images):
            rng = _rng(self.seed, 'ties', key, idx) if self.shuffle_ties else None
            c = image_chips(w, h, boxes, ignore, self.scales, self.valid_ranges,
                            self.chip_size, stride, props, len(props) if props is not None
                            else 0, self.neg_min_proposals, rng)
            n_pos = int((~c['negative']).sum())
            keep = np.arange(n_pos)
            n_neg = len(c['chips']) - n_pos
            if n_neg and self.neg_per_image:
                pick = _rng(self.seed, 'neg', key, idx).permutation(n_neg)[:self.neg_per_image]
                keep = np.concatenate([keep, n_pos + np.sort(pick)])
            assign = c['assign']
            for j in keep:
                img.append(idx)
                chip.append(c['chips'][j])
                scale.append(c['scale'][j])
                k.append(c['scale_index'][j])
                neg.append(j >= n_pos)
                targets.append(np.flatnonzero((assign == j).any(1)) if j < n_pos else
                               np.zeros(0, np.int64))
        order = np.argsort(np.asarray(neg, bool), kind='stable')  # positives first
        table = dict(img=np.asarray(img, np.int64)[order] if img else np.zeros(0, np.int64),
                     chip=np.asarray(chip, np.int64).reshape(-1, 4)[order],
                     scale=np.asarray(scale, np.float64)[order],
                     k=np.asarray(k, np.int64)[order], negative=np.asarray(neg, bool)[order],
                     targets=[targets[i] for i in order], stride=stride)
        if len(self._tables) >= 2:  # keep the current and the previous epoch
            self._tables.pop(next(iter(self._tables)))
        self._tables[key] = table
        return table

    @force_full_init
    def num_chips(self, epoch: Optional[int] = None) -> int:
        """Chips (positive and negative) of ``epoch`` (default: the current one)."""
        return len(self._table(self.epoch if epoch is None else epoch)['img'])

    @property
    @force_full_init
    def num_positive(self) -> int:
        return int((~self._table(self.epoch)['negative']).sum())

    @force_full_init
    def __len__(self) -> int:
        return self.num_chips()

    def _resolve(self, idx) -> Tuple[dict, int]:
        if isinstance(idx, (tuple, list)):  # (epoch, index) from SNIPERSampler
            epoch, idx = int(idx[0]), int(idx[1])
        else:
            epoch = self.epoch
            if self.resamples and not self._warned_plain_index and _in_worker():
                self._warned_plain_index = True
                warnings.warn(
                    'SNIPERDataset: a dataloader worker got a plain index, so it uses the chips '
                    f'of epoch {epoch} it was started with; use '
                    "train_dataloader.sampler=dict(type='SNIPERSampler') so that chips change "
                    'every epoch, also with persistent workers')
        table = self._table(epoch)
        n = len(table['img'])
        if not -n <= idx < n:
            raise IndexError(f'chip index {idx} out of range for {n} chips (epoch {epoch})')
        return table, idx % n

    @force_full_init
    def get_chip(self, idx) -> Tuple[int, np.ndarray, float, int, bool]:
        """(image index, chip x1y1x2y2 in scaled pixels, scale, scale index, negative) of item
        ``idx`` (an int, or ``(epoch, int)``)."""
        t, i = self._resolve(idx)
        return (int(t['img'][i]), t['chip'][i], float(t['scale'][i]), int(t['k'][i]),
                bool(t['negative'][i]))

    @force_full_init
    def get_data_info(self, idx) -> dict:
        """The inner image's data info with this chip's instances and ``sniper_chip``."""
        t, i = self._resolve(idx)
        img, chip, scale = int(t['img'][i]), t['chip'][i], float(t['scale'][i])
        info = self.dataset.get_data_info(img)
        instances = info.get('instances', [])
        boxes, _ = _instance_arrays(instances)
        boxes = clip_boxes(boxes, info['width'], info['height'])
        target = np.zeros(len(boxes), bool)
        target[t['targets'][i]] = True
        keep, clipped, ign = chip_annotations(chip, scale, boxes, target, self.min_box_size)
        new = []
        for j, box, flag in zip(keep, clipped, ign):
            inst = dict(instances[j])
            inst['bbox'] = [float(v) for v in box]
            inst['ignore_flag'] = int(flag)
            new.append(inst)
        info['instances'] = new
        info['sniper_chip'] = dict(box=[int(v) for v in chip], scale=scale,
                                   scale_index=int(t['k'][i]),
                                   negative=bool(t['negative'][i]))
        return info

    def __getitem__(self, idx) -> dict:
        return self.dataset.pipeline(self.get_data_info(idx))


def _in_worker() -> bool:
    try:
        from torch.utils.data import get_worker_info
    except ImportError:  # pragma: no cover
        return False
    return get_worker_info() is not None


@DATA_SAMPLERS.register_module()
class SNIPERSampler(Sampler):
    """mmengine's ``DefaultSampler`` for a :class:`SNIPERDataset` whose chips change per epoch.

    Each epoch it reads the epoch's number of chips and yields ``(epoch, index)`` pairs, so the
    dataset -- also its copy in a persistent dataloader worker, which never sees ``set_epoch``
    -- serves that epoch's chips. The epoch comes from the runner (``set_epoch``, mmengine's
    ``DistSamplerSeedHook`` and train loop). Distributed: each rank takes every
    ``world_size``-th index of the shuffled, rounded-up list.

    Args:
        dataset: the train dataset (a :class:`SNIPERDataset`, possibly wrapped).
        shuffle: shuffle the chips (seeded by ``seed`` + epoch).
        seed: shuffle seed (None: synchronised random seed, as ``DefaultSampler``).
        round_up: pad to a multiple of the world size.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: Optional[int] = None,
                 round_up: bool = True):
        from mmengine.dist import get_dist_info, sync_random_seed
        self.sniper = find_sniper_dataset(dataset)
        if self.sniper is None:
            raise TypeError(f'SNIPERSampler needs a SNIPERDataset, got {type(dataset).__name__}')
        self.dataset = dataset
        self.rank, self.world_size = get_dist_info()
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.round_up = round_up
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.sniper.set_epoch(epoch)

    def _total(self) -> int:
        return self.sniper.num_chips(self.epoch)

    def __iter__(self):
        import torch
        n = self._total()
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if self.round_up and n:
            size = len(self) * self.world_size
            indices = (indices * int(size / n + 1))[:size]
        for i in indices[self.rank::self.world_size]:
            yield (self.epoch, i)

    def __len__(self) -> int:
        n = self._total()
        if self.round_up:
            return math.ceil(n / self.world_size)
        return math.ceil((n - self.rank) / self.world_size)


@HOOKS.register_module()
class SNIPEREpochHook(Hook):
    """Tells a :class:`SNIPERDataset` (found through ``.dataset`` attributes) the epoch.

    Needed only with a sampler other than :class:`SNIPERSampler`; then it refuses, before
    training starts, persistent dataloader workers while the chips change between epochs
    (they would never see the new epoch)."""

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        ds = find_sniper_dataset(getattr(loader, 'dataset', None))
        if ds is None or isinstance(getattr(loader, 'sampler', None), SNIPERSampler):
            return
        if getattr(loader, 'persistent_workers', False) and ds.resamples:
            raise ValueError(
                'SNIPERDataset chips change every epoch (stride draw, tie order or negative '
                'chips), but train_dataloader has persistent_workers=True with a '
                f'{type(loader.sampler).__name__}: its workers would reuse epoch 0\'s chips. '
                "Use train_dataloader.sampler=dict(type='SNIPERSampler') or "
                'persistent_workers=False')

    def before_train_epoch(self, runner) -> None:
        ds = find_sniper_dataset(runner.train_dataloader.dataset)
        if ds is None:  # any wrapper with set_epoch
            ds = next((d for d in _dataset_chain(runner.train_dataloader.dataset)
                       if hasattr(d, 'set_epoch')), None)
        if ds is not None:
            ds.set_epoch(runner.epoch)
