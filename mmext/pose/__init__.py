"""Pose models for MMPose 1.x: modules here register in ``mmpose.registry``."""
# Each feature appends its own import line below.
from . import hand_box, hand_cpm, synthetic_hands  # noqa: F401,E402  (issue 10: hand keypoints)
from . import bone_symmetry, kcs, repnet, synthetic_poses3d  # noqa: F401,E402  (issue 11: RepNet)
from . import openpose_hand  # noqa: F401,E402  (issue 19: OpenPose's hand network)
