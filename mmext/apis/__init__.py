from .det_inferencer import DetInferencer

__all__ = ['DetInferencer']
