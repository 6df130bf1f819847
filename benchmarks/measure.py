"""Shared statistics for the benchmarks: confidence intervals that a reader can trust.

Two uses, one rule -- a figure is printed with its 95 % interval and the number of repeats:

* **Timing ratios** (:func:`compare`): the variants run *interleaved* (A, B, A, B, ...), so load
  from other processes hits all of them alike; warm-up rounds are dropped; each round gives one
  paired ratio ``t_ref / t_variant`` and the interval is the t-interval of the mean *log* ratio
  (ratios are multiplicative), exponentiated. Rounds continue until every interval is narrower
  than ``+-target`` (default 5 %) or a cap on rounds / seconds is hit; the result says which.
  CUDA work is synchronised before each clock read.
* **Seeds** (:func:`mean_ci`, :func:`paired_ci`): the mean over seeds with the t-interval, and
  the paired difference of two methods trained with the same seeds.
* **Runs that outlive a process** (:func:`cached`): each trained run's figures are stored as JSON
  under ``--results-dir``, keyed by everything that defines the run, so a benchmark can be split
  over processes (one seed each, two cores) or killed and restarted, and a last call with every
  seed prints the whole table without training anything again.

Run ``python -m pytest tests/test_benchmark_measure.py`` for the behaviour this guarantees.
"""
import json
import math
import os
import os.path as osp
import time
from typing import Callable, Dict, List, NamedTuple, Sequence

from scipy import stats as _st

from mmext.analysis import _sync  # CUDA synchronisation before a clock read (no-op on CPU)


class Interval(NamedTuple):
    mean: float
    low: float
    high: float
    n: int

    def __str__(self):
        return f'{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})'

    @property
    def half_width(self):
        return (self.high - self.low) / 2


def _t(n, conf):
    return float(_st.t.ppf(0.5 + conf / 2, n - 1))


def mean_ci(values: Sequence[float], conf: float = 0.95) -> Interval:
    """Mean with its t-interval. One value gives an unbounded interval (NaN ends): a single run
    has no spread to report, and the table should say so."""
    v = [float(x) for x in values]
    n = len(v)
    if n == 0:
        raise ValueError('mean_ci: no values')
    m = sum(v) / n
    if n == 1:
        return Interval(m, float('nan'), float('nan'), 1)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    h = _t(n, conf) * sd / math.sqrt(n)
    return Interval(m, m - h, m + h, n)


def paired_ci(a: Sequence[float], b: Sequence[float], conf: float = 0.95) -> Interval:
    """Interval of mean(a - b) over paired runs (same seed for a[i] and b[i])."""
    if len(a) != len(b):
        raise ValueError(f'paired_ci: {len(a)} vs {len(b)} values; pair them by seed')
    return mean_ci([x - y for x, y in zip(a, b)], conf)


class Comparison(NamedTuple):
    ratios: Dict[str, Interval]  # t_ref / t_variant: > 1 means the variant is faster
    seconds: Dict[str, float]  # median seconds per call of each variant
    rounds: int
    converged: bool  # every interval within +-target
    times: Dict[str, List[float]]  # every variant's timed rounds (warm-up dropped), in order

    def ratio(self, ref: str, name: str, conf: float = 0.95) -> Interval:
        """``t[ref] / t[name]`` for any two variants, paired by round like ``ratios`` (the
        stopping rule only watched the ratios against the ``compare`` reference)."""
        return _ratios({ref: self.times[ref], name: self.times[name]}, ref, 0, conf)[name]

    def describe(self, ref: str) -> str:
        lines = []
        for name, r in self.ratios.items():
            lines.append(f'{ref}/{name} = {r.mean:.2f}x [{r.low:.2f}, {r.high:.2f}] '
                         f'(95 %, {r.n} rounds)')
        if not self.converged:
            lines.append('(stopped at the cap before every interval was within the target)')
        return '\n'.join(lines)


def compare(fns: Dict[str, Callable[[], object]], ref: str, device: str = 'cpu',
            warmup: int = 2, min_rounds: int = 5, max_rounds: int = 200,
            max_seconds: float = 60.0, target: float = 0.05, conf: float = 0.95,
            clock: Callable[[], float] = time.perf_counter) -> Comparison:
    """Time every callable in ``fns`` interleaved until ``t[ref] / t[name]`` is known to
    ``+-target`` (relative half-width of the interval) for every other name.

    Args:
        fns: name -> a callable doing one unit of work (e.g. forward + backward).
        ref: the name the others are compared with.
        warmup: rounds dropped at the start (allocator, caches, cudnn autotune).
        min_rounds / max_rounds / max_seconds: limits on the timed rounds.
        target: stop when every ratio's interval is within ``mean * (1 +- target)``.
    """
    if ref not in fns:
        raise ValueError(f'compare: ref={ref!r} is not one of {sorted(fns)}')
    if len(fns) < 2:
        raise ValueError('compare: need the reference and at least one other variant')
    if min_rounds < 2:
        raise ValueError(f'compare: min_rounds={min_rounds}; an interval needs >= 2 rounds')
    times = {k: [] for k in fns}
    start = clock()
    rounds = 0
    converged = False
    while True:
        for name, fn in fns.items():
            _sync(device)
            t0 = clock()
            fn()
            _sync(device)
            times[name].append(clock() - t0)
        rounds += 1
        timed = rounds - warmup
        if timed >= min_rounds:
            ratios = _ratios(times, ref, warmup, conf)
            converged = all(r.high / r.mean - 1 <= target and 1 - r.low / r.mean <= target
                            for r in ratios.values())
            if converged or timed >= max_rounds or clock() - start >= max_seconds:
                break
    seconds = {k: sorted(v[warmup:])[len(v[warmup:]) // 2] for k, v in times.items()}
    return Comparison(ratios, seconds, timed, converged,
                      {k: v[warmup:] for k, v in times.items()})


def _ratios(times, ref, warmup, conf):
    out = {}
    for name, v in times.items():
        if name == ref:
            continue
        logs = [math.log(r / t) for r, t in zip(times[ref][warmup:], v[warmup:])]
        c = mean_ci(logs, conf)
        out[name] = Interval(math.exp(c.mean), math.exp(c.low), math.exp(c.high), c.n)
    return out


def run_key(**fields) -> str:
    """File-name-safe key of a run: every field that changes its result, in a fixed order.
    A field that is None is left out, so an option added later keeps the keys of earlier runs
    made with its default."""
    parts = []
    for k in sorted(fields):
        v = fields[k]
        if v is None:
            continue
        v = '-'.join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        parts.append(f'{k}={v}'.replace('/', '_').replace(' ', '_'))
    return ','.join(parts)


def cached(results_dir, key: str, fn: Callable[[], object]):
    """``fn()``'s result, read from ``results_dir/key.json`` when a run stored it there before.

    The result must be JSON-serialisable (tuples come back as lists). ``results_dir=None``
    disables the store. The file is written atomically, so a run killed while saving is redone.
    """
    if not results_dir:
        return fn()
    path = osp.join(results_dir, key + '.json')
    if osp.exists(path):
        with open(path) as f:
            return json.load(f)
    result = fn()
    os.makedirs(results_dir, exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(result, f)
    os.replace(tmp, path)
    with open(path) as f:  # the caller sees exactly what a later call will load
        return json.load(f)
