from .synthetic import CLASSES as SYNTHETIC_CLASSES
from .synthetic import SyntheticSpec, generate, generate_split
from .synthetic_dataset import SyntheticShapesDataset

__all__ = [
    'SYNTHETIC_CLASSES', 'generate', 'generate_split', 'SyntheticSpec', 'SyntheticShapesDataset'
]
