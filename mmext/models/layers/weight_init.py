"""TensorFlow's variance-scaling initialiser as an mmengine ``init_cfg`` type.

``dict(type='VarianceScaling', layer='Conv2d', scale=1.0, mode='fan_in',
distribution='truncated_normal')`` draws each weight with variance ``scale / n``, ``n`` the
fan-in, fan-out or their mean, as ``tf.keras.initializers.VarianceScaling`` (and TF1's
``tf.variance_scaling_initializer``) does:

* ``'truncated_normal'``: a normal cut at two standard deviations, its std divided by
  0.8796 (the std of a unit normal cut at +-2) so the variance stays ``scale / n``;
* ``'normal'``: ``N(0, scale / n)``; ``'uniform'``: ``U(-sqrt(3 scale / n), +sqrt(3 scale / n))``.

The fans are TensorFlow's, which differ from PyTorch's for grouped convolutions: TF builds a
grouped or depth-wise conv from per-group kernels, so the fan-out of a conv with ``groups``
groups is ``k * k * out_channels / groups`` (timm's ``_init_weight_goog``,
``fix_group_fanout=True``), where ``torch.nn.init`` (and so mmengine's ``Kaiming``) takes
``k * k * out_channels`` -- for a depth-wise conv ``C`` times too large a fan-out. The fan-in,
``k * k * in_channels / groups``, is the same in both.

Used by SpineNet (official: ``VarianceScaling`` = scale 1, fan-in, truncated normal) and MixNet
(official ``conv_kernel_initializer``: normal with std ``sqrt(2 / fan_out)``; its
``dense_kernel_initializer``: uniform with limit ``1 / sqrt(out_features)``).
"""
import math

import torch.nn as nn
from mmengine.model.weight_init import BaseInit, _get_bases_name, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS

# std of a unit normal truncated to [-2, 2] (TF's correction constant)
TRUNCATED_NORMAL_STD = 0.87962566103423978
MODES = ('fan_in', 'fan_out', 'fan_avg')
DISTRIBUTIONS = ('truncated_normal', 'normal', 'uniform')


def tf_fans(module: nn.Module):
    """(fan_in, fan_out) of a conv or linear layer as TensorFlow counts them."""
    w = module.weight
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    groups = getattr(module, 'groups', 1)
    return w.size(1) * receptive, w.size(0) // groups * receptive


def variance_scaling_std(module: nn.Module, scale: float = 1.0, mode: str = 'fan_in') -> float:
    """The std the weights of ``module`` get: ``sqrt(scale / n)``."""
    fan_in, fan_out = tf_fans(module)
    n = {'fan_in': fan_in, 'fan_out': fan_out, 'fan_avg': (fan_in + fan_out) / 2}[mode]
    return math.sqrt(scale / max(1.0, n))


def variance_scaling_init(module: nn.Module, scale: float = 1.0, mode: str = 'fan_in',
                          distribution: str = 'truncated_normal', bias: float = 0.0) -> None:
    std = variance_scaling_std(module, scale, mode)
    if distribution == 'truncated_normal':
        s = std / TRUNCATED_NORMAL_STD
        nn.init.trunc_normal_(module.weight, 0.0, s, -2 * s, 2 * s)
    elif distribution == 'normal':
        nn.init.normal_(module.weight, 0.0, std)
    else:
        limit = math.sqrt(3.0) * std
        nn.init.uniform_(module.weight, -limit, limit)
    if getattr(module, 'bias', None) is not None:
        nn.init.constant_(module.bias, bias)


@WEIGHT_INITIALIZERS.register_module(name='VarianceScaling')
class VarianceScalingInit(BaseInit):
    """mmengine initialiser for :func:`variance_scaling_init` (see the module docstring).

    Args:
        scale (float): variance numerator. Default 1.0.
        mode (str): ``'fan_in'`` (default), ``'fan_out'`` or ``'fan_avg'``, TF's fans.
        distribution (str): ``'truncated_normal'`` (default), ``'normal'`` or ``'uniform'``.
        bias (float), layer (str | list[str]): as mmengine's other initialisers.
    """

    def __init__(self, scale=1.0, mode='fan_in', distribution='truncated_normal', **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f'VarianceScaling: mode={mode!r} is not one of {MODES}')
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f'VarianceScaling: distribution={distribution!r} is not one of '
                             f'{DISTRIBUTIONS}')
        if not scale > 0:
            raise ValueError(f'VarianceScaling: scale={scale} must be > 0')
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, module):
        def init(m):
            if not hasattr(m, 'weight') or m.weight is None:
                return
            if self.wholemodule or set(self.layer) & set([m.__class__.__name__] +
                                                         _get_bases_name(m)):
                variance_scaling_init(m, self.scale, self.mode, self.distribution, self.bias)

        module.apply(init)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self):
        return (f'{self.__class__.__name__}: scale={self.scale}, mode={self.mode}, '
                f'distribution={self.distribution}, bias={self.bias}')
