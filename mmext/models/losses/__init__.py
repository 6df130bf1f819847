from .gaussian_nll import GaussianNLLLoss, gaussian_nll

__all__ = ['GaussianNLLLoss', 'gaussian_nll']
