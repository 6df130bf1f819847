"""The box loss of Gaussian YOLOv3 (Choi et al., ICCV 2019, arXiv:1904.04620, eq. 5).

Each box coordinate is predicted as a Gaussian N(mu, sigma^2); the loss is the negative
log-likelihood of the target coordinate, with a small constant inside the log so that a target far
outside the predicted Gaussian costs at most ``-log(eps)`` (~20.7 for the paper's 1e-9):

    L = -log( exp(-(t - mu)^2 / (2 sigma^2)) / (sqrt(2 pi) (sigma + sigma_offset)) + eps )

``sigma_offset`` is the stabiliser of the official code (jwchoi384/Gaussian_YOLOv3,
``src/gaussian_yolo_layer.c``: 0.3, in the normaliser only, not in the exponent); the paper does
not mention it. Without it the likelihood of an exactly-hit target grows without bound as
sigma -> 0 and training can diverge; ``sigma_offset=0`` gives the paper's eq. 5 exactly.

Not :class:`torch.nn.GaussianNLLLoss`: that one takes a variance, has no ``eps`` inside the log
and no stabiliser.
"""
import math
from typing import Optional

import torch
from mmdet.models.losses.utils import weight_reduce_loss
from torch import Tensor, nn

from ...registry import MODELS

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_nll(mu: Tensor, sigma: Tensor, target: Tensor, sigma_offset: float = 0.3,
                 eps: float = 1e-9, sigma_min: float = 1e-6) -> Tensor:
    """Element-wise ``-log(N(target; mu, sigma) + eps)`` with the normaliser's ``sigma_offset``.

    Computed in log space (``-logaddexp(log N, log eps)``), which is the same number but keeps
    the gradient finite where the density underflows: there the weight ``N / (N + eps)`` is an
    exact 0 instead of ``0 * inf``. ``sigma`` is clamped at ``sigma_min`` so ``1 / sigma^3``
    stays finite in float32; below it eq. 5 is flat anyway (the ``eps`` floor) unless the
    target is hit exactly. Always computed in float32 (under AMP, 1 / sigma overflows float16).
    """
    mu, target = mu.float(), target.float()
    sigma = sigma.float().clamp(min=sigma_min)
    log_density = (-0.5 * ((target - mu) / sigma)**2 - _LOG_SQRT_2PI -
                   torch.log(sigma + sigma_offset))
    return -torch.logaddexp(log_density, log_density.new_tensor(math.log(eps)))


@MODELS.register_module()
class GaussianNLLLoss(nn.Module):
    """Gaussian YOLOv3's box loss (eq. 5): NLL of each target coordinate, weighted.

    Args:
        sigma_offset (float): added to sigma in the Gaussian's normaliser (not the exponent).
            Default 0.3, the official code's constant that trained the published models;
            0 is the paper's eq. 5.
        eps (float): added to the density inside the log. Default 1e-9 (the paper's).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Default ``'sum'`` (as mmdet's
            YOLOv3 losses and darknet).
        loss_weight (float): multiplies the loss. Default 1.0.
    """

    REDUCTIONS = ('none', 'mean', 'sum')

    def __init__(self, sigma_offset: float = 0.3, eps: float = 1e-9, reduction: str = 'sum',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if sigma_offset < 0:
            raise ValueError(f'GaussianNLLLoss: sigma_offset={sigma_offset} must be >= 0 '
                             f'(0: the paper, 0.3: the official code)')
        if eps <= 0:
            raise ValueError(f'GaussianNLLLoss: eps={eps} must be > 0 (the paper uses 1e-9)')
        if reduction not in self.REDUCTIONS:
            raise ValueError(f'GaussianNLLLoss: reduction={reduction!r} is not one of '
                             f'{self.REDUCTIONS}')
        self.sigma_offset = sigma_offset
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, mu: Tensor, sigma: Tensor, target: Tensor,
                weight: Optional[Tensor] = None, avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """mu, sigma, target (and weight, broadcastable) have the same shape; sigma in (0, 1]."""
        reduction = reduction_override or self.reduction
        loss = gaussian_nll(mu, sigma, target, self.sigma_offset, self.eps)
        if weight is not None:
            weight = weight.expand_as(loss).float()
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
