import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def run_tool(args, cwd=ROOT, env=None, timeout=900):
    """Run a command the way a user would (from the repository root), return the result."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    full_env.update(env or {})
    return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def logged_losses(work_dir):
    """The total losses mmengine logged in the newest run under ``work_dir``, in order."""
    import glob
    import json
    logs = sorted(glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'scalars.json')))
    rows = [json.loads(line) for line in open(logs[-1])]
    return [r['loss'] for r in rows if 'loss' in r]


def train_config(python, config, work_dir, timeout=3600):
    """Train ``config`` with tools/train.py as a user would; return (losses, last bbox mAP)."""
    import re
    res = run_tool([python, 'tools/train.py', config, '--work-dir', str(work_dir)],
                   timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    maps = re.findall(r'coco/bbox_mAP: (-?[\d.]+)', res.stdout + res.stderr)
    return logged_losses(work_dir), float(maps[-1]) if maps else None


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _default_registry_scope(request):
    """Run every test under the default scope its module names (``REGISTRY_SCOPE``: 'mmdet'
    unless a pose module says 'mmpose'), as a Runner sets it from the config. mmengine's
    default scope is process-global, so without this a test inherits whatever scope the test
    before it left behind and a registry then looks in the other library's (mmdet <-> mmpose)."""
    from mmengine.registry import init_default_scope
    init_default_scope(getattr(request.module, 'REGISTRY_SCOPE', 'mmdet'))


@pytest.fixture(scope='session')
def synthetic_root():
    """The default synthetic set (generated once, as the tools would)."""
    from mmext.datasets.synthetic import ensure_generated
    root = osp.join(ROOT, 'data', 'synthetic')
    ensure_generated(root, ['train', 'val'])
    return root


@pytest.fixture
def python():
    return sys.executable
