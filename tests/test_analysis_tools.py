"""get_flops (mmdet's own script) and mmext's CPU benchmark on mmext configs."""
import os.path as osp
import re

import mmdet
import pytest

from conftest import run_tool

SYN = 'configs/spinenet/retinanet_spinenet-49s_synthetic.py'
MMDET_GET_FLOPS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools',
                           'get_flops.py')


def _parse_size(text):
    value, unit = re.fullmatch(r'([\d.]+)([KMGT]?)', text).groups()
    return float(value) * {'': 1, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}[unit]


@pytest.mark.parametrize('script', [MMDET_GET_FLOPS, 'tools/analysis_tools/get_flops.py'])
def test_get_flops_on_mmext_config_equals_model_complexity(script, python, synthetic_root):
    res = run_tool([python, script, SYN, '--num-images', '1'])
    assert res.returncode == 0, res.stderr[-3000:]
    shape = re.search(r'Input shape: \((\d+), (\d+)\)', res.stdout)
    flops = re.search(r'Flops: ([\d.]+[KMGT]?)', res.stdout).group(1)
    params = re.search(r'Params: ([\d.]+[KMGT]?)', res.stdout).group(1)
    from mmext.analysis import model_complexity
    ours = model_complexity(SYN, (int(shape.group(1)), int(shape.group(2))))
    assert _parse_size(flops) == pytest.approx(ours['flops'], rel=1e-3)
    assert _parse_size(params) == pytest.approx(ours['params'], rel=1e-3)


def test_benchmark_runs_on_cpu_without_a_dataset(python):
    res = run_tool([python, 'tools/analysis_tools/benchmark.py', SYN, '--shape', '128',
                    '--max-iter', '4', '--num-warmup', '1', '--log-interval', '2',
                    '--device', 'cpu'])
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'input shape: (128, 128)' in res.stdout
    assert re.search(r'Done image \[4  /4\], fps: [\d.]+ img/s', res.stdout)
    fps = float(re.search(r'Overall fps: ([\d.]+) img/s', res.stdout).group(1))
    assert fps > 0


def test_benchmark_rejects_a_bad_shape(python):
    res = run_tool([python, 'tools/analysis_tools/benchmark.py', SYN, '--shape', '1', '2', '3'])
    assert res.returncode != 0
    assert 'error: --shape takes H W or one side, got [1, 2, 3]' in res.stderr
