from .gaussian_nll import GaussianNLLLoss, gaussian_nll

__all__ = ['GaussianNLLLoss', 'gaussian_nll']
from .distillation_loss import (FeatureImitationLoss, SoftTargetDistillLoss,  # noqa: F401
                                soft_target_kl)
