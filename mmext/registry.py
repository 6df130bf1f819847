"""Where mmext's modules are registered.

mmext registers into the registries of the library whose tools run the config -- detection
modules into ``mmdet.registry``, pose modules into ``mmpose.registry`` -- instead of creating an
``mmext`` scope. A config then keeps ``default_scope = 'mmdet'`` (or ``'mmpose'``) from the
MMDetection/MMPose base it inherits, names mmext modules by plain ``type='SpineNet'``, and any
tool that reads the config -- mmdet's own ``tools/train.py``, ``test.py``,
``analysis_tools/get_flops.py``, ``browse_dataset.py`` or mmext's copies -- finds them after
``custom_imports = dict(imports=['mmext'], allow_failed_imports=False)``. A separate scope
would force ``default_scope='mmext'`` and the ``mmdet.`` prefix on every inherited module.
"""
from mmdet.registry import (DATASETS, HOOKS, METRICS, MODELS, PARAM_SCHEDULERS, TRANSFORMS,
                            VISUALIZERS)

__all__ = [
    'DATASETS', 'HOOKS', 'METRICS', 'MODELS', 'PARAM_SCHEDULERS', 'TRANSFORMS', 'VISUALIZERS'
]
