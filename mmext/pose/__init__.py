"""Pose models for MMPose 1.x: modules here register in ``mmpose.registry``."""
# Each feature appends its own import line below.
