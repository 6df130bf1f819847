"""Safe checkpoint loading: mmengine checkpoints load under torch's restricted unpickler, on every path.

Two problems, one module.

**1. Every checkpoint path must be the safe one.** mmengine 0.10.7 loads checkpoints through the
scheme loaders of ``mmengine.runner.CheckpointLoader``: a local path calls ``torch.load`` without
``weights_only`` (safe by default since torch 2.6, unless ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is
set), but ``http(s)://``, ``torchvision://``, ``open-mmlab://`` and ``mmcls://`` go through
``torch.hub.load_state_dict_from_url``, whose ``weights_only`` defaults to False: a crafted file
behind a URL (or already in torch hub's cache) runs its payload. That is the path of
``load_from=URL``, ``init_cfg=dict(type='Pretrained', checkpoint=URL)``, ``tools/test.py CFG URL``,
``mmdet.apis.init_detector`` and ``mmpose.apis.init_model``. :func:`install_safe_checkpoint_loader`
(run by ``import mmext``) wraps ``CheckpointLoader.load_checkpoint`` -- the one entry point all
schemes share, including those registered later -- so that while it runs, every ``torch.load``
is forced to ``weights_only=True`` whatever its caller passed, and a refusal becomes
:class:`UnsafeCheckpointError` naming the file and the refused global.

**2. Making mmengine checkpoints loadable under the safe loader.**

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6 that means the safe
unpickler, which refuses the non-tensor objects an mmengine checkpoint holds (the message hub's
``HistoryBuffer`` objects and the numpy arrays/scalars inside them). Resuming a run and loading a
checkpoint for testing then fail with "Weights only load failed" (mmengine PR 1670, unreleased).

The fix keeps the safe unpickler and allow-lists exactly what mmengine writes
(``torch.serialization.get_unsafe_globals_in_checkpoint`` on an epoch checkpoint lists it):

* ``HistoryBuffer`` and the numpy pieces needed to rebuild arrays, dtypes and scalars;
* ``bytes``: the dataset metainfo mmengine stores holds empty arrays in pose datasets
  (Human3.6M's ``sigmas``), whose buffer pickle writes as ``builtins.bytes()``; ``bytes`` only
  builds an immutable value;
* ``builtins.getattr`` -- *not* the real one. ``HistoryBuffer._statistics_methods`` maps names
  to its own methods, and pickle stores a method as ``getattr(HistoryBuffer, 'min')``. Allowing
  the real ``getattr`` would let a crafted checkpoint walk from any allowed object to anything it
  references (``__init__.__globals__`` and so on), which is the door ``weights_only`` exists to
  close. We map that pickle name to :func:`_statistics_getattr` instead, which only returns a
  registered statistics method of an allow-listed class and refuses everything else.

Turning ``weights_only`` off would also make resume work, and would also run any code a
downloaded checkpoint carries: that is why it is not the fix.
"""
import functools
import pickle
import re
import threading
from contextlib import contextmanager

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

_GETATTR_OWNERS = (HistoryBuffer, )
# HistoryBuffer fills `_statistics_methods` with these in its first __init__, so a fresh process
# that loads a checkpoint before any buffer exists must know them up front
_BUILTIN_STATISTICS = ('min', 'max', 'current', 'mean')


def _statistics_getattr(obj, name, *default):
    """Stand-in for ``builtins.getattr`` inside checkpoints: statistics methods only."""
    if (isinstance(obj, type) and issubclass(obj, _GETATTR_OWNERS)
            and isinstance(name, str)
            and (name in _BUILTIN_STATISTICS or name in getattr(obj, '_statistics_methods', {}))):
        return getattr(obj, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'mmext refuses getattr({obj!r}, {name!r}) while loading a checkpoint: only the '
        f'statistics methods of {[c.__name__ for c in _GETATTR_OWNERS]} may be looked up')


def _numpy_globals():
    """The numpy callables/classes needed to unpickle arrays, dtypes and scalars."""
    from numpy.core import multiarray
    found = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    # numpy >= 1.25 pickles a dtype through its class (numpy.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return found


def safe_checkpoint_globals():
    """Everything :func:`allow_mmengine_checkpoints` allow-lists, for inspection and tests."""
    return [HistoryBuffer, bytes, *_numpy_globals(), (_statistics_getattr, 'builtins.getattr')]


def allow_mmengine_checkpoints():
    """Allow-list mmengine's checkpoint contents for torch's safe loader (idempotent)."""
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(safe_checkpoint_globals())


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asks the unpickler for something outside mmext's allow-list."""


def _refused_global(message: str) -> str:
    """The global torch's restricted unpickler refused, as it names it ('posix.system')."""
    found = re.search(r'GLOBAL ([\w.]+)', message) or re.search(
        r'Unsupported global: ([\w.]+)', message) or re.search(r'getattr\([^)]*\)', message)
    return found.group(1) if found and found.groups() else (
        found.group(0) if found else message.strip().splitlines()[0][:200])


def unsafe_checkpoint_error(filename, err: Exception) -> UnsafeCheckpointError:
    what = _refused_global(str(err))
    return UnsafeCheckpointError(
        f"mmext refused to load the checkpoint '{filename}': it asks for `{what}`, which is "
        'not on the allow-list of torch\'s restricted unpickler (tensors, numpy arrays, dtypes '
        'and scalars, mmengine\'s HistoryBuffer). Loading it could run code. If you made the '
        'file yourself and trust it, re-save only its tensors (e.g. its state_dict) with '
        'torch.save, and load that instead.')


_original_torch_load = torch.load
_patch_lock = threading.RLock()
_patch_depth = 0


def _forced_weights_only_load(f, map_location=None, pickle_module=None, *, weights_only=None,
                              **kwargs):
    """``torch.load`` with ``weights_only=True`` whatever the caller asked for.

    ``pickle_module`` is dropped: torch refuses it together with ``weights_only``."""
    return _original_torch_load(f, map_location=map_location, weights_only=True, **kwargs)


@contextmanager
def weights_only_loads():
    """While active, every ``torch.load`` call in this process uses the restricted unpickler.

    torch.hub and mmengine look ``torch.load`` up at call time, so replacing the attribute
    reaches them; the lock and the depth count make nested and concurrent uses restore it once.
    """
    global _patch_depth
    with _patch_lock:
        if _patch_depth == 0:
            torch.load = _forced_weights_only_load
        _patch_depth += 1
    try:
        yield
    finally:
        with _patch_lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                torch.load = _original_torch_load


def _safe_scheme_loader(load_checkpoint):
    """Wrap ``CheckpointLoader.load_checkpoint`` (the classmethod's function)."""

    @functools.wraps(load_checkpoint)
    def safe_load_checkpoint(cls, filename, map_location=None, logger='current'):
        with weights_only_loads():
            try:
                return load_checkpoint(cls, filename, map_location, logger)
            except pickle.UnpicklingError as e:
                if isinstance(e, UnsafeCheckpointError):
                    raise
                raise unsafe_checkpoint_error(filename, e) from None

    safe_load_checkpoint._mmext_safe = True
    return safe_load_checkpoint


def install_safe_checkpoint_loader():
    """Make every mmengine checkpoint scheme load with the restricted unpickler (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    current = CheckpointLoader.__dict__['load_checkpoint'].__func__
    if not getattr(current, '_mmext_safe', False):
        CheckpointLoader.load_checkpoint = classmethod(_safe_scheme_loader(current))
