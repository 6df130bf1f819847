"""Training-loop components (parameter schedulers) registered in MMDetection's registries."""
from .schedulers import CyclicWarmRestartLR

__all__ = ['CyclicWarmRestartLR']
