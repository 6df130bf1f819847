"""Make mmengine checkpoints loadable under torch >= 2.6's ``weights_only=True`` default.

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
