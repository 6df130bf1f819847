from .box_jitter import JitterBoxes
from .synthetic import CLASSES as SYNTHETIC_CLASSES
from .synthetic import SyntheticSpec, generate, generate_split
from .synthetic_dataset import SyntheticShapesDataset

__all__ = [
    'JitterBoxes', 'SYNTHETIC_CLASSES', 'generate', 'generate_split', 'SyntheticSpec',
    'SyntheticShapesDataset'
]
from .sniper import SNIPERDataset, SNIPEREpochHook  # noqa: F401,E402
from .sniper_transforms import SNIPERChipCrop  # noqa: F401,E402
