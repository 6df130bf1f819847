from .distillation import DistillationSingleStageDetector  # noqa: F401
from .sniper_inference import SNIPERTestLoop, SNIPERTTAModel, SNIPERValLoop  # noqa: F401
from .sniper_assigner import SNIPERMaxIoUAssigner  # noqa: F401
from .sniper_tiled import SNIPERTiledTestLoop, sniper_tiled_inference  # noqa: F401
