"""mmext: research models for MMDetection 3.x and MMPose 1.x.

Importing mmext (configs do it with ``custom_imports = dict(imports=['mmext'])``):

* registers mmext's modules in MMDetection's registries (``mmdet.registry.MODELS`` ...) and,
  for pose models, MMPose's -- see :mod:`mmext.registry` for why;
* makes every checkpoint path of mmengine (local files, URLs, ``torchvision://``,
  ``open-mmlab://``, ...) load with torch's restricted unpickler, and mmengine checkpoints
  loadable by it (:mod:`mmext.utils.checkpoint_compat`).
"""
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

from .utils.checkpoint_compat import (allow_mmengine_checkpoints,  # noqa: E402
                                      install_safe_checkpoint_loader)
from .version import __version__  # noqa: E402

allow_mmengine_checkpoints()
install_safe_checkpoint_loader()

# register modules
from . import datasets, engine, models, pose, visualization  # noqa: E402,F401

__all__ = ['__version__']
