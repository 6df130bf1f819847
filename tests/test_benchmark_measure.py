"""benchmarks/measure.py: the intervals every benchmark prints (issues 21, 22)."""
import math
import os.path as osp
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, osp.join(ROOT, 'benchmarks'))
import measure  # noqa: E402


class FakeClock:
    """Time advances only when a variant 'works', by the amounts the test scripts."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def work(self, seconds_iter):
        it = iter(seconds_iter)

        def fn():
            self.now += next(it)
        return fn


def test_mean_ci_matches_the_t_interval():
    c = measure.mean_ci([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd 1.29099, t(0.975, 3) = 3.18245 -> half width 2.0543
    assert c.mean == pytest.approx(2.5)
    assert c.half_width == pytest.approx(3.182446 * 1.290994 / 2, rel=1e-5)
    assert c.n == 4


def test_one_run_has_no_interval():
    c = measure.mean_ci([0.23])
    assert c.mean == 0.23 and math.isnan(c.low) and math.isnan(c.high)


def test_paired_ci_needs_pairs():
    assert measure.paired_ci([1, 2, 3], [0, 1, 1]).mean == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match='pair them by seed'):
        measure.paired_ci([1, 2], [1])


def test_compare_interleaves_drops_warmup_and_stops_when_narrow():
    clock = FakeClock()
    order = []
    slow = clock.work(10.0 if i < 2 else 2.0 for i in range(1000))  # warm-up rounds are slow
    fast = clock.work(1.0 for _ in range(1000))

    def a():
        order.append('a')
        slow()

    def b():
        order.append('b')
        fast()
    res = measure.compare(dict(a=a, b=b), ref='a', warmup=2, min_rounds=5, clock=clock)
    assert order[:6] == ['a', 'b'] * 3  # interleaved
    assert res.converged and res.rounds == 5  # constant times: converged at min_rounds
    assert res.ratios['b'].mean == pytest.approx(2.0)  # warm-up (10 s) excluded
    assert res.seconds == {'a': 2.0, 'b': 1.0}


def test_compare_ratio_pairs_any_two_variants_without_the_warmup():
    """benchmarks/mixconv.py compares mmext and timm both in channels-last, while the run's
    reference is timm in NCHW."""
    clock = FakeClock()
    ref = clock.work(9.0 if i < 2 else 4.0 for i in range(1000))
    cl_a = clock.work(9.0 if i < 2 else 3.0 for i in range(1000))
    cl_b = clock.work(1.0 if i < 2 else 2.0 for i in range(1000))
    res = measure.compare(dict(ref=ref, a=cl_a, b=cl_b), ref='ref', warmup=2, min_rounds=5,
                          clock=clock)
    assert len(res.times['a']) == res.rounds == 5  # warm-up rounds dropped
    r = res.ratio('a', 'b')
    assert r.mean == pytest.approx(1.5) and r.n == 5  # 3 s / 2 s, not (9 + ...) / (1 + ...)
    assert res.ratio('ref', 'b').mean == pytest.approx(res.ratios['b'].mean)


def test_compare_keeps_going_while_noisy_and_reports_the_cap():
    clock = FakeClock()
    noisy = clock.work(1.0 + (0.5 if i % 2 else -0.5) for i in range(10000))
    steady = clock.work(1.0 for _ in range(10000))
    res = measure.compare(dict(ref=steady, x=noisy), ref='ref', warmup=0, min_rounds=3,
                          max_rounds=8, target=0.01, clock=clock)
    assert not res.converged and res.rounds == 8
    assert 'stopped at the cap' in res.describe('ref')


def test_compare_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ref='z'"):
        measure.compare(dict(a=lambda: 0, b=lambda: 0), ref='z')
    with pytest.raises(ValueError, match='min_rounds=1'):
        measure.compare(dict(a=lambda: 0, b=lambda: 0), ref='a', min_rounds=1)


def test_fp_at_matched_tp_walks_down_the_score_list():
    """benchmarks/gaussian_yolo.py: the paper's FP comparison at the same TP count."""
    import numpy as np
    import torch
    from mmengine.structures import InstanceData
    gy = pytest.importorskip('gaussian_yolo')
    gt = InstanceData(bboxes=torch.tensor([[0., 0, 10, 10], [20, 20, 30, 30]]),
                      labels=torch.tensor([0, 0]))
    pred = InstanceData(
        bboxes=torch.tensor([[0., 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60],
                             [20, 20, 30, 30]]),
        scores=torch.tensor([0.9, 0.8, 0.7, 0.6]), labels=torch.tensor([0, 0, 0, 0]))
    scores, is_tp = gy.scored_matches([(pred, gt)])
    # the duplicate of the first box is an FP (its GT is taken), the far box an FP
    assert scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6])
    assert is_tp.tolist() == [True, False, False, True]
    assert gy.fp_at_tp((scores, is_tp), 1) == (0, pytest.approx(0.9))
    assert gy.fp_at_tp((scores, is_tp), 2) == (2, pytest.approx(0.6))
    assert gy.fp_at_tp((scores, is_tp), 3) is None
    assert gy.fp_at_tp((np.array([]), np.array([], bool)), 1) is None


def test_gaussian_yolo_large_data_is_trained_and_tested_on_the_large_splits(tmp_path):
    """--data large must reach the test evaluator too: the config's test_evaluator is a copy
    of val_evaluator, and a stale one read the default val.json after 24 minutes of training."""
    from argparse import Namespace
    gy = pytest.importorskip('gaussian_yolo')
    args = Namespace(epochs=2, scale=96, workers=0, data='large', train_images=0)
    for name in gy.CFGS:
        cfg = gy.make_cfg(name, args, str(tmp_path), seed=0, jitter=0.1)
        assert cfg.train_dataloader.dataset.split == 'train_large'
        assert cfg.test_dataloader.dataset.split == 'val_large'
        assert cfg.test_evaluator.ann_file.endswith('annotations/val_large.json')


def test_cached_runs_once_and_resumes_from_disk(tmp_path):
    calls = []

    def train():
        calls.append(1)
        return dict(ap=(0.2, 0.4), losses=[3.0, 1.0])

    key = measure.run_key(seed=1, epochs=12, refine='cpm', stages=(1, 2))
    assert key == 'epochs=12,refine=cpm,seed=1,stages=1-2'
    # an option at its default (None) leaves the key of earlier runs unchanged
    assert measure.run_key(seed=1, epochs=12, refine='cpm', stages=(1, 2), weighting=None) == key
    first = measure.cached(str(tmp_path), key, train)
    again = measure.cached(str(tmp_path), key, train)  # e.g. a later process with every seed
    assert calls == [1]
    assert first == again == dict(ap=[0.2, 0.4], losses=[3.0, 1.0])
    # another key (another seed) trains; no store at all trains every time
    measure.cached(str(tmp_path), measure.run_key(seed=2, epochs=12), train)
    measure.cached(None, key, train)
    assert len(calls) == 3


def test_mixconv_benchmark_refuses_quick_with_network_only():
    """--quick skips the whole-network timing that --network-only asks for: a clear error, not
    a run that measures nothing."""
    import subprocess
    out = subprocess.run([sys.executable, osp.join(ROOT, 'benchmarks', 'mixconv.py'), '--quick',
                          '--network-only'], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert '--quick skips the network that --network-only measures' in out.stderr


def test_pooled_interval_is_over_processes_not_rounds():
    """Two runs of benchmarks/sniper.py --chip-scaling gave disjoint intervals: each process
    was steady, but the processes differed. Pooled, the interval covers that spread."""
    parts = []
    for k in (2.0, 3.0, 4.0):  # each process steady at its own ratio, 5 rounds
        parts.append(measure.Comparison({}, {}, 5, True, dict(a=[k] * 5, b=[1.0] * 5)))
    res = measure.pool(parts, ref='a')
    logs = [math.log(k) for k in (2.0, 3.0, 4.0)]
    c = measure.mean_ci(logs)
    r = res.ratios['b']
    assert r.n == 3 and res.blocks == (5, 5, 5) and res.rounds == 15
    assert r.mean == pytest.approx(24 ** (1 / 3))
    assert (r.low, r.high) == (pytest.approx(math.exp(c.low)), pytest.approx(math.exp(c.high)))
    assert r.low < 2.0 and r.high > 4.0  # every process's ratio inside the interval
    assert res.ratio('a', 'b') == r  # any pair is pooled the same way
    assert res.extent == '15 rounds in 3 processes' and res.unit == 'processes'
    assert res.process_logs('a', 'b') == pytest.approx(logs)  # for means over several shapes
    assert parts[0].process_logs('a', 'b') == pytest.approx([math.log(2.0)])  # not pooled
    # over the 15 rounds as if one process, the interval would claim far more certainty
    flat = measure.Comparison({}, {}, 15, True, res.times).ratio('a', 'b')
    assert flat.n == 15 and flat.high - flat.low < (r.high - r.low) / 2


SCRIPT = '''
import os, sys
sys.path.insert(0, {bench!r})
import measure
measure.use_processes(3)
worker = os.environ.get('MMEXT_BENCH_RECORD')
k = None
if worker:  # workers number themselves 2, 3, 4 through a counter file
    counter = os.path.join({tmp!r}, 'count')
    k = 2 + (int(open(counter).read()) if os.path.exists(counter) else 0)
    open(counter, 'w').write(str(k - 1))
now = [0.0]
def work(seconds):
    def fn():
        now[0] += seconds
    return fn
res = measure.compare(dict(a=work(k or 0), b=work(1.0)), ref='a', warmup=0, min_rounds=3,
                      clock=lambda: now[0])
print('first', res.ratios['b'].mean, res.ratios['b'].n, res.extent)
res = measure.compare(dict(a=work(1.0), c=work(k or 0)), ref='a', warmup=0, min_rounds=3,
                      clock=lambda: now[0])
print('second', res.ratios['c'].mean, res.ratios['c'].n)
if not worker and {extra}:
    measure.compare(dict(a=work(1.0), b=work(1.0)), ref='a', clock=lambda: now[0])
'''


def _run_script(tmp_path, extra=False):
    import subprocess
    script = tmp_path / 'bench.py'
    script.write_text(SCRIPT.format(bench=osp.join(ROOT, 'benchmarks'), tmp=str(tmp_path),
                                    extra=extra))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=str(tmp_path))


def test_use_processes_replays_each_compare_call_pooled_over_fresh_workers(tmp_path):
    out = _run_script(tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split('\n')
    # only the parent's lines are shown (workers' stdout is dropped), one per compare() call
    first = next(x for x in lines if x.startswith('first')).split(' ', 3)
    second = next(x for x in lines if x.startswith('second')).split()
    assert float(first[1]) == pytest.approx(24 ** (1 / 3)) and first[2] == '3'
    assert first[3].endswith('rounds in 3 processes')
    assert float(second[1]) == pytest.approx(24 ** (-1 / 3)) and second[2] == '3'
    assert out.stderr.count('[measure] process') == 3
    assert sum(x.startswith('first') for x in lines) == 1


def test_use_processes_names_a_call_the_workers_did_not_make(tmp_path):
    out = _run_script(tmp_path, extra=True)
    assert out.returncode != 0
    assert "compare() call 3 (ref='a', variants ['a', 'b']) has no match" in out.stderr
    with pytest.raises(ValueError, match='--processes 0'):
        measure.use_processes(0)


def test_mixconv_quick_measures_one_thread_unless_told_otherwise():
    """``--quick --threads 0`` is the layer table at all threads (the card's 2-thread rows)."""
    pytest.importorskip('timm')
    import mixconv
    assert mixconv.thread_counts(None, quick=True) == [1]
    assert mixconv.thread_counts(None, quick=False) == [1, 0]
    assert mixconv.thread_counts([0], quick=True) == [0]


@pytest.mark.parametrize('preset,expected', [(None, str(measure.ONEDNN_CACHE_CAPACITY)),
                                             ('2048', '2048')])
def test_importing_measure_enlarges_onednn_primitive_cache(preset, expected):
    """Several networks interleaved in one process overflowed oneDNN's default 1024 compiled
    kernels and slowed each other down; measure sets a larger cache unless the user set one."""
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if k != 'ONEDNN_PRIMITIVE_CACHE_CAPACITY'}
    if preset is not None:
        env['ONEDNN_PRIMITIVE_CACHE_CAPACITY'] = preset
    out = subprocess.run(
        [sys.executable, '-c', 'import os, measure; '
         'print(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"])'],
        cwd=osp.join(ROOT, 'benchmarks'), env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
