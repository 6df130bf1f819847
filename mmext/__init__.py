"""mmext: research models for MMDetection 3.x and MMPose 1.x.

Importing mmext (configs do it with ``custom_imports = dict(imports=['mmext'])``):

* registers mmext's modules in MMDetection's registries (``mmdet.registry.MODELS`` ...) and,
  for pose models, MMPose's -- see :mod:`mmext.registry` for why;
* makes mmengine checkpoints loadable under torch >= 2.6 (:mod:`mmext.utils.checkpoint_compat`).
"""
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

from .utils.checkpoint_compat import allow_mmengine_checkpoints  # noqa: E402
from .version import __version__  # noqa: E402

allow_mmengine_checkpoints()

from . import datasets, engine, models, pose  # noqa: E402,F401  (register modules)

__all__ = ['__version__']
