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
