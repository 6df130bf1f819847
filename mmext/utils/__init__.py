from .checkpoint_compat import allow_mmengine_checkpoints
from .launch import DatasetNotFoundError, check_data_paths

__all__ = ['allow_mmengine_checkpoints', 'DatasetNotFoundError', 'check_data_paths']
