"""Peer tests: mmext against the reference implementations themselves (TF Model Garden, ...).

They need the separate environment ``.venv-peers`` (TensorFlow, tf-models-official, torch) and
take minutes, so they are collected only under ``make test-peers`` (``MMEXT_PEERS=1``); plain
``make test`` / ``pytest tests`` skips this directory.
"""
import os
import os.path as osp
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PEERS_PY = os.environ.get('MMEXT_PEERS_PYTHON', osp.join(ROOT, '.venv-peers', 'bin', 'python'))

if os.environ.get('MMEXT_PEERS') != '1':
    collect_ignore_glob = ['test_*.py']


def run_peer(args, timeout=1800):
    """Run a script with the peers' Python (TensorFlow side); fail with its output."""
    if not osp.exists(PEERS_PY):
        pytest.fail(f'{PEERS_PY} missing: run `make test-peers` (it creates .venv-peers)')
    env = dict(os.environ, OMP_NUM_THREADS='1', TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=ROOT,
               CUDA_VISIBLE_DEVICES='')
    res = subprocess.run([PEERS_PY] + list(args), cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    return res


def rel_err(ours, ref):
    """Worst absolute difference relative to the reference's largest magnitude."""
    import numpy as np
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))


def load_converter(name):
    """tools/model_converters/<name>.py as a module (tools/ is not a package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        name, osp.join(ROOT, 'tools', 'model_converters', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
