from .local_visualizer import UncertaintyDetLocalVisualizer

__all__ = ['UncertaintyDetLocalVisualizer']
