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
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, NamedTuple, Sequence, Tuple

from scipy import stats as _st

# PyTorch's CPU convolutions (oneDNN) cache their compiled kernels, 1024 by default (oneDNN's
# primitive cache). A benchmark that interleaves several networks in one process can use more
# (at 2 threads, where the 1x1 convs run in oneDNN too) and every call then recompiles: each
# network's speed depends on what else is timed. Measured: timm's MixNet-M step in channels-last
# vs NCHW, 1.01x with six networks in the round, 1.22x-1.28x with five, or with six and this
# capacity (benchmarks/mixconv.py --network-only --threads 0; ideep's LRU_CACHE_CAPACITY made no
# difference). oneDNN reads it when the first primitive is created, so setting it at import
# suffices (also checked with --processes 1); a value already in the environment wins.
ONEDNN_CACHE_CAPACITY = 65536
os.environ.setdefault('ONEDNN_PRIMITIVE_CACHE_CAPACITY', str(ONEDNN_CACHE_CAPACITY))


def _sync(device):
    """CUDA synchronisation before a clock read (mmext's, imported only for a GPU, so that a
    benchmark's worker processes start without importing mmext for nothing)."""
    if str(device).startswith('cuda'):
        from mmext.analysis import _sync as sync
        sync(device)


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
    # timed rounds per process when pooled over processes (``times`` holds them one process
    # after another); empty: one process, and the intervals are over rounds
    blocks: Tuple[int, ...] = ()

    def ratio(self, ref: str, name: str, conf: float = 0.95) -> Interval:
        """``t[ref] / t[name]`` for any two variants, paired by round like ``ratios`` (the
        stopping rule only watched the ratios against the ``compare`` reference); pooled by
        process like ``ratios`` where the comparison ran in several."""
        return _ratios({ref: self.times[ref], name: self.times[name]}, ref, 0, conf,
                       self.blocks)[name]

    def process_logs(self, ref: str, name: str) -> List[float]:
        """Mean ``log(t[ref] / t[name])`` of each process (one value when not pooled): what a
        benchmark averages over several comparisons (e.g. a geometric mean over layer shapes)
        before taking an interval over processes with :func:`mean_ci`."""
        logs = [math.log(r / t) for r, t in zip(self.times[ref], self.times[name])]
        return _per_process(logs, self.blocks or (len(logs), ))

    @property
    def extent(self) -> str:
        """How much was timed, e.g. '120 rounds in 5 processes'."""
        return f'{self.rounds} rounds' + (f' in {len(self.blocks)} processes' if self.blocks
                                          else '')

    @property
    def unit(self) -> str:
        """What an interval's ``n`` counts."""
        return 'processes' if self.blocks else 'rounds'

    def describe(self, ref: str) -> str:
        lines = []
        for name, r in self.ratios.items():
            lines.append(f'{ref}/{name} = {r.mean:.2f}x [{r.low:.2f}, {r.high:.2f}] '
                         f'(95 %, {r.n} {self.unit})')
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
    if _session.replay is not None:
        return _session.next_pooled(list(fns), ref, conf)
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
    seconds = {k: _median(v[warmup:]) for k, v in times.items()}
    res = Comparison(ratios, seconds, timed, converged, {k: v[warmup:] for k, v in times.items()})
    _session.record(ref, res)
    return res


def _median(v):
    return sorted(v)[len(v) // 2]


def _ratios(times, ref, warmup, conf, blocks=()):
    """Interval of ``t[ref] / t[name]`` per variant: over rounds, or with ``blocks`` (rounds per
    process) over the processes' mean log ratios."""
    out = {}
    for name, v in times.items():
        if name == ref:
            continue
        logs = [math.log(r / t) for r, t in zip(times[ref][warmup:], v[warmup:])]
        if blocks:
            logs = _per_process(logs, blocks)
        c = mean_ci(logs, conf)
        out[name] = Interval(math.exp(c.mean), math.exp(c.low), math.exp(c.high), c.n)
    return out


def _per_process(logs, blocks):
    """The mean of each process's rounds in ``logs`` (``blocks``: rounds per process, in order)."""
    out, start = [], 0
    for b in blocks:
        out.append(sum(logs[start:start + b]) / b)
        start += b
    return out


# ----------------------------------------------------------------------------- processes
_RECORD_ENV = 'MMEXT_BENCH_RECORD'  # set in a worker: the JSON file its compare() calls go to
_KEEP_ENV = 'MMEXT_BENCH_KEEP'  # set by a user: keep worker{i}.json there (every round's times)


class _Session:
    """This process's part in a run over several processes: a worker records each
    :func:`compare` call; the parent replays them, pooled, in the same order."""

    def __init__(self):
        self.record_path = os.environ.get(_RECORD_ENV)
        self.recorded = []
        self.replay = None  # parent: per worker, its list of recorded calls
        self.calls = 0

    def record(self, ref, res):
        if not self.record_path:
            return
        self.recorded.append(dict(ref=ref, times=res.times, converged=res.converged))
        tmp = self.record_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.recorded, f)
        os.replace(tmp, self.record_path)

    def next_pooled(self, names, ref, conf):
        n, self.calls = self.calls, self.calls + 1
        calls = [w[n] if n < len(w) else None for w in self.replay]
        if any(c is None or c['ref'] != ref or sorted(c['times']) != sorted(names)
               for c in calls):
            raise RuntimeError(
                f'compare() call {n + 1} (ref={ref!r}, variants {sorted(names)}) has no match '
                'in every worker process: a benchmark run with --processes must make the same '
                'compare() calls, in the same order, in every process')
        return pool([Comparison({}, {}, len(c['times'][ref]), c['converged'], c['times'])
                     for c in calls], ref, conf)


_session = _Session()


def pool(parts: Sequence[Comparison], ref: str, conf: float = 0.95) -> Comparison:
    """One comparison from the same comparison run in several processes: rounds kept per
    process, ratio intervals over the processes' mean log ratios (``n`` = processes), seconds
    the median of every round, converged only if every process converged."""
    names = list(parts[0].times)
    times = {k: [t for p in parts for t in p.times[k]] for k in names}
    blocks = tuple(len(p.times[ref]) for p in parts)
    return Comparison(_ratios(times, ref, 0, conf, blocks),
                      {k: _median(v) for k, v in times.items()}, sum(blocks),
                      all(p.converged for p in parts), times, blocks)


def in_worker() -> bool:
    """True in a worker process of :func:`use_processes` (e.g. to skip figures that only the
    parent prints)."""
    return bool(_session.record_path)


def add_processes_argument(parser, default: int = 10):
    parser.add_argument(
        '--processes', type=int, default=default,
        help='run every comparison in this many fresh processes, one after another, and print '
             'intervals over the processes (between-process spread included); 1: one process, '
             'intervals over its rounds')


def use_processes(processes: int) -> None:
    """Make this script's :func:`compare` calls pool ``processes`` fresh runs of itself.

    Call it at the start of ``main`` after parsing the arguments. With ``processes > 1`` (and
    not already in a worker) it runs this script's own command line ``processes`` times, one
    after another, each worker recording its ``compare`` calls (the workers' tables are not
    shown; ``MMEXT_BENCH_KEEP=DIR`` keeps each
    worker's timed rounds in ``DIR/worker{i}.json``); afterwards each ``compare`` call here times
    nothing and returns the pooled result of the same call in the workers. The rest of the
    script (model building, output checks, printing) runs here as it does in one process.
    """
    if processes < 1:
        raise ValueError(f'--processes {processes}: give 1 or more')
    if processes == 1 or _session.record_path:
        return
    argv = list(sys.argv)
    keep = os.environ.get(_KEEP_ENV)  # a folder to keep the workers' records in, to inspect
    with tempfile.TemporaryDirectory(prefix='mmext-bench-') as tmp:
        if keep:
            os.makedirs(keep, exist_ok=True)
            tmp = keep
        replay = []
        for i in range(processes):
            path = osp.join(tmp, f'worker{i}.json')
            if osp.exists(path):  # a kept record of an earlier run is not this worker's
                os.remove(path)
            print(f'[measure] process {i + 1}/{processes}: {" ".join(argv)}', file=sys.stderr,
                  flush=True)
            done = subprocess.run([sys.executable] + argv, env={**os.environ, _RECORD_ENV: path},
                                  stdout=subprocess.DEVNULL)
            if done.returncode != 0:
                raise RuntimeError(f'worker process {i + 1}/{processes} exited with '
                                   f'{done.returncode}; its error is above')
            if not osp.exists(path):  # a worker that made no compare() call
                replay.append([])
                continue
            with open(path) as f:
                replay.append(json.load(f))
    _session.replay, _session.calls = replay, 0


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
