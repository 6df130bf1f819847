"""import mmext makes mmengine checkpoints load under torch's weights_only default, safely."""
import io
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmext  # noqa: F401
from conftest import run_tool


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf)  # the default: weights_only=True since torch 2.6


def test_message_hub_state_loads_with_weights_only_default():
    hub = MessageHub.get_instance('mmext_test_hub')
    for v in (1.0, 0.5, 0.25):
        hub.update_scalar('train/loss', v)
    hub.update_info('epoch', 3)
    state = dict(message_hub=hub.state_dict(), arr=np.arange(3, dtype=np.float32),
                 scalar=np.float64(2.5), weights=torch.ones(2))
    loaded = _roundtrip(state)
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(np.mean([1.0, 0.5, 0.25]))
    assert buf.min() == 0.25
    np.testing.assert_array_equal(loaded['arr'], np.arange(3, dtype=np.float32))
    assert loaded['scalar'] == 2.5


def test_empty_arrays_in_dataset_metainfo_load():
    """Pose metainfo (Human3.6M's empty ``sigmas``) pickles an empty buffer as builtins.bytes()."""
    meta = dict(sigmas=np.array([], dtype=np.float32), flip=np.zeros((0, 2), dtype=np.int64))
    loaded = _roundtrip(dict(meta=meta))
    assert loaded['meta']['sigmas'].shape == (0, )
    assert loaded['meta']['flip'].shape == (0, 2)


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


class _WalkAttrs:
    """Pickles as getattr(HistoryBuffer, '__init__'): a step towards __globals__."""
    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_checkpoint_loads_in_a_fresh_process(tmp_path, python):
    """No HistoryBuffer exists yet there (its statistics table fills on first use)."""
    hub = MessageHub.get_instance('mmext_test_hub_fresh')
    hub.update_scalar('loss', 1.5)
    torch.save({'message_hub': hub.state_dict()}, tmp_path / 'ckpt.pth')
    code = ("import torch, mmext; c = torch.load(r'%s'); "
            "print(c['message_hub']['log_scalars']['loss'].max())" % (tmp_path / 'ckpt.pth'))
    res = run_tool([python, '-c', code])
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == '1.5'


@pytest.mark.parametrize('payload, why', [(_Evil(), 'system'), (_WalkAttrs(), '__init__')])
def test_unsafe_payloads_are_still_refused(payload, why):
    buf = io.BytesIO()
    torch.save({'x': payload}, buf, pickle_protocol=2)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match=why):
        torch.load(buf)
