"""MMPose's Convolutional Pose Machine (Wei et al., arXiv:1602.00134) at the sizes of the hand
network of Simon et al., "Hand Keypoint Detection in Single Images using Multiview
Bootstrapping", CVPR 2017 (arXiv:1704.07809).

This is *not* OpenPose's hand network: MMPose's CPM has 9x9 image towers with BN and 11x11 stage
convs (40,589,758 parameters at 128 channels), OpenPose's (``models/hand/pose_deploy.prototxt``)
a VGG-19 trunk, 7x7 stages, no BN and 22 maps (36,832,324 parameters): that one is
:class:`mmext.pose.openpose_hand.OpenPoseHandNet`. What the two share (from the prototxt):
368x368 input, stride 8 (46x46 maps), 6 stages; stages 2-6 take the previous stage's maps
concatenated with 128 image-feature channels; a heatmap loss at every stage. With MMPose's
``CPM`` that is ``middle_channels=128`` (MMPose's default, 32, is the body CPM's) and
``CPMHead(num_stages=6)``, whose loss sums over all stages. The CPM configs predict the 21
keypoint maps only (OpenPose adds a background map; :class:`OpenPoseHandHead` has it).

:class:`HandCPM` only adds ``stem_channels``: MMPose's CPM hard-codes 128 channels in its two
image-feature paths. At 128 ``HandCPM`` is exactly ``CPM``; the synthetic config narrows them
so that a 6-stage CPM trains on a CPU in minutes.
"""
import copy

import torch.nn as nn
from mmcv.cnn import ConvModule

from mmpose.models.backbones import CPM
from mmpose.registry import MODELS

# the sizes of the paper's hand network (pose_deploy.prototxt) as MMPose CPM arguments
HAND_CPM_PAPER = dict(input_size=368, heatmap_size=46, num_keypoints=21, num_stages=6,
                      feat_channels=128, middle_channels=128, stem_channels=128)


@MODELS.register_module()
class HandCPM(CPM):
    """MMPose ``CPM`` with the width of its image-feature paths as an argument.

    Output: ``num_stages`` maps of ``(B, out_channels, H/8, W/8)``, one per stage.

    Args:
        in_channels: input channels (3).
        out_channels: keypoint maps per stage (21 for hands).
        feat_channels: channels inside each refinement stage (paper: 128).
        middle_channels: image-feature channels concatenated to every stage (paper: 128).
        num_stages: stages (paper: 6).
        stem_channels: width of the stride-8 image-feature paths (paper / MMPose: 128).
        norm_cfg: normalisation layers.
        init_cfg: initialisation, as MMPose's CPM.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 21, feat_channels: int = 128,
                 middle_channels: int = 128, num_stages: int = 6, stem_channels: int = 128,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), **kwargs):
        if stem_channels < 1:
            raise ValueError(f'HandCPM: stem_channels must be >= 1, got {stem_channels}')
        super().__init__(in_channels, out_channels, feat_channels=feat_channels,
                         middle_channels=middle_channels, num_stages=num_stages,
                         norm_cfg=norm_cfg, **kwargs)
        self.stem_channels = stem_channels
        if stem_channels == 128:
            return
        # same layer sequence as mmpose's CPM.stem / CPM.middle, narrower
        c, norm = stem_channels, copy.deepcopy(norm_cfg)

        def path():
            return [ConvModule(in_channels, c, 9, padding=4, norm_cfg=norm),
                    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
                    ConvModule(c, c, 9, padding=4, norm_cfg=norm),
                    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
                    ConvModule(c, c, 9, padding=4, norm_cfg=norm),
                    nn.MaxPool2d(kernel_size=3, stride=2, padding=1)]

        self.stem = nn.Sequential(
            *path(), ConvModule(c, 32, 5, padding=2, norm_cfg=norm),
            ConvModule(32, 4 * c, 9, padding=4, norm_cfg=norm),
            ConvModule(4 * c, 4 * c, 1, padding=0, norm_cfg=norm),
            ConvModule(4 * c, out_channels, 1, padding=0, act_cfg=None))
        self.middle = nn.Sequential(*path())
        self.middle_conv = nn.ModuleList([
            nn.Sequential(ConvModule(c, middle_channels, 5, padding=2, norm_cfg=norm))
            for _ in range(num_stages - 1)])
