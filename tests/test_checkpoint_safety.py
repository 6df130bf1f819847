"""No checkpoint runs code, whichever path loads it (after ``import mmext``).

Each payload pickles a call of ``os.system('touch MARKER')``; the tests assert that the marker is
never created, that the load stops with mmext's message naming the refused global, and that the
tools exit non-zero. URLs are served from a pre-filled torch hub cache (``TORCH_HOME``), so no
network is used -- the same way a file downloaded once is loaded ever after.
"""
import os
import os.path as osp
import pickle
from urllib.parse import urlparse

import pytest
import torch
from mmengine.runner.checkpoint import (CheckpointLoader, get_external_models,
                                        get_torchvision_models, load_checkpoint)

import mmext  # noqa: F401
from mmext.utils.checkpoint_compat import UnsafeCheckpointError
from conftest import ROOT, run_tool

TINY = 'tests/configs/centernet_tiny.py'


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _evil_checkpoint(path, marker):
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    torch.save({'state_dict': {}, 'meta': _Payload(marker)}, str(path))
    return str(path)


def _hub_cached(torch_home, url, marker):
    """Put a crafted checkpoint where torch.hub caches ``url``."""
    name = osp.basename(urlparse(url).path)
    return _evil_checkpoint(osp.join(str(torch_home), 'hub', 'checkpoints', name), marker)


def _assert_refused(res, marker):
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert 'mmext refused to load the checkpoint' in out, out[-3000:]
    assert 'posix.system' in out or 'os.system' in out, out[-3000:]
    assert 'Traceback' not in res.stderr, res.stderr[-3000:]  # mmext's message, not a trace
    assert not osp.exists(marker)


# ------------------------------------------------------------------ through the tools
def test_url_checkpoint_given_to_test_tool_is_refused(tmp_path, python, synthetic_root):
    marker = tmp_path / 'pwned'
    url = 'https://example.invalid/models/evil.pth'
    _hub_cached(tmp_path / 'torch', url, marker)
    res = run_tool([python, 'tools/test.py', TINY, url, '--work-dir', str(tmp_path / 'w')],
                   env=dict(TORCH_HOME=str(tmp_path / 'torch')))
    _assert_refused(res, marker)


def test_load_from_url_is_refused_by_train_tool(tmp_path, python, synthetic_root):
    marker = tmp_path / 'pwned'
    url = 'http://example.invalid/evil_load_from.pth'
    _hub_cached(tmp_path / 'torch', url, marker)
    res = run_tool([python, 'tools/train.py', TINY, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', f'load_from={url}'],
                   env=dict(TORCH_HOME=str(tmp_path / 'torch')))
    _assert_refused(res, marker)


def test_init_cfg_pretrained_torchvision_scheme_is_refused(tmp_path, python, synthetic_root):
    marker = tmp_path / 'pwned'
    _hub_cached(tmp_path / 'torch', get_torchvision_models()['resnet18'], marker)
    cfg = tmp_path / 'pretrained.py'
    cfg.write_text(f"_base_ = {osp.join(ROOT, TINY)!r}\n"
                   "model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', "
                   "checkpoint='torchvision://resnet18')))\n")
    res = run_tool([python, 'tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')],
                   env=dict(TORCH_HOME=str(tmp_path / 'torch')))
    _assert_refused(res, marker)


def test_resume_from_crafted_local_checkpoint_is_refused(tmp_path, python, synthetic_root):
    marker = tmp_path / 'pwned'
    ckpt = _evil_checkpoint(tmp_path / 'epoch_1.pth', marker)
    res = run_tool([python, 'tools/train.py', TINY, '--work-dir', str(tmp_path / 'w'),
                    '--resume', ckpt])
    _assert_refused(res, marker)


# ------------------------------------------------------------------ every scheme, in process
def test_open_mmlab_scheme_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    marker = tmp_path / 'pwned'
    name, url = next((k, v) for k, v in get_external_models().items()
                     if v.startswith('http'))
    _hub_cached(tmp_path / 'torch', url, marker)
    with pytest.raises(UnsafeCheckpointError, match=r'open-mmlab://.*posix\.system'):
        CheckpointLoader.load_checkpoint(f'open-mmlab://{name}')
    assert not marker.exists()


def test_s3_scheme_is_refused(tmp_path, monkeypatch):
    """mmengine's ceph/petrel loader reads bytes through a file backend, then torch.load."""
    import mmengine.runner.checkpoint as ckpt_mod
    marker = tmp_path / 'pwned'
    data = open(_evil_checkpoint(tmp_path / 'evil.pth', marker), 'rb').read()

    class _Backend:
        def get(self, filename):
            return data

    monkeypatch.setattr(ckpt_mod, 'get_file_backend', lambda *a, **k: _Backend())
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        CheckpointLoader.load_checkpoint('s3://bucket/evil.pth')
    assert not marker.exists()


def test_local_file_is_refused_even_when_torch_is_told_not_to(tmp_path, monkeypatch):
    """``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns mmengine's plain ``torch.load`` unsafe."""
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'pwned'
    path = _evil_checkpoint(tmp_path / 'evil.pth', marker)
    model = torch.nn.Linear(2, 2)
    with pytest.raises(UnsafeCheckpointError, match=r'evil\.pth.*posix\.system'):
        load_checkpoint(model, path)
    assert not marker.exists()


def test_refusal_is_still_an_unpickling_error_and_loading_is_restored():
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)
    from mmext.utils import checkpoint_compat
    assert torch.load is checkpoint_compat._original_torch_load  # patched only while loading


def test_genuine_checkpoint_from_url_cache_loads(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    model = torch.nn.Linear(3, 2)
    url = 'https://example.invalid/good.pth'
    path = osp.join(str(tmp_path), 'torch', 'hub', 'checkpoints', 'good.pth')
    os.makedirs(osp.dirname(path))
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('mmext_safety_hub')
    hub.update_scalar('loss', 0.5)
    torch.save({'state_dict': model.state_dict(), 'message_hub': hub.state_dict()}, path)
    other = torch.nn.Linear(3, 2)
    load_checkpoint(other, url)
    assert torch.equal(other.weight, model.weight)
