"""OpenPose's hand network (Simon et al., "Hand Keypoint Detection in Single Images using
Multiview Bootstrapping", CVPR 2017, arXiv:1704.07809) as an MMPose backbone + head.

Layer by layer as OpenPose's ``models/hand/pose_deploy.prototxt``:

* trunk: VGG-19 to ``conv4_4`` (3x3 convs, ReLU, 2x2/2 max-pools after ``conv1_2``, ``conv2_2``,
  ``conv3_4``), then ``conv5_1``, ``conv5_2`` (512) and ``conv5_3_CPM`` (128): the stride-8
  image features F that every stage reads;
* stage 1: ``conv6_1_CPM`` (1x1, 512, ReLU), ``conv6_2_CPM`` (1x1, 22);
* stages 2-6: concat(previous stage's 22 maps, F) -> ``Mconv1..5`` (7x7, 128, pad 3, ReLU) ->
  ``Mconv6`` (1x1, 128, ReLU) -> ``Mconv7`` (1x1, 22);
* no normalisation layers; the output maps carry no ReLU. 22 maps = 21 keypoints + background.

Parameters: 36,832,324 with the prototxt's widths (trunk 15,972,054 incl. stage 1; each later
stage 4,172,054), the count a test checks. Input as OpenPose feeds it (``cropFrame`` +
``uCharCvMatToFloatPtr(..., normalize=1)``): BGR, x / 256 - 0.5, so the configs set the data
preprocessor to mean 128, std 256, no BGR->RGB swap.

The head (:class:`OpenPoseHandHead`) is MMPose's :class:`CPMHead` (a loss at every stage, as
the prototxt's training counterpart) with the background map: its target is
max(0, 1 - max_k H_k) of the keypoint targets H_k, weighted 1; decoding, flip test and
``output_heatmaps`` use the 21 keypoint maps only.

:class:`HandCPM` (``mmext/pose/hand_cpm.py``) is MMPose's CPM at hand sizes -- a different
network (9x9 image towers with BN, 11x11 stage convs); this module is OpenPose's.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmpose.models.backbones.base_backbone import BaseBackbone
from mmpose.models.heads import CPMHead
from mmpose.registry import MODELS

# pose_deploy.prototxt as data. Trunk: ints are 3x3 conv widths, 'M' a 2x2/2 max-pool.
OPENPOSE_HAND = dict(
    trunk=(64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512,  # conv1-4
           512, 512),                                                              # conv5_1-2
    feat_channels=128,        # conv5_3_CPM
    stage1_channels=512,      # conv6_1_CPM
    stage_channels=128,       # Mconv1-6
    stage_kernel=7, stage_convs=5,
    num_stages=6, out_channels=22, input_size=368, stride=8,
    num_params=36_832_324,    # counted from the prototxt's layer shapes
)


def _conv(cin: int, cout: int, k: int, relu: bool = True) -> List[nn.Module]:
    layers = [nn.Conv2d(cin, cout, k, padding=k // 2)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


@MODELS.register_module()
class OpenPoseHandNet(BaseBackbone):
    """OpenPose's hand network: VGG-19 trunk + 6 CPM stages of 22 maps each.

    Output: a list of ``num_stages`` maps ``(B, out_channels, H/8, W/8)``, one per stage (the
    form :class:`mmpose.models.heads.CPMHead` reads).

    Args:
        in_channels: input channels (3).
        out_channels: maps per stage (22: 21 keypoints + background).
        num_stages: stages (OpenPose: 6).
        widen_factor: multiplies every hidden width (trunk, F, stages); 1.0 is OpenPose's
            network. Smaller values are for CPU-sized runs.
        init_cfg: initialisation (default: Kaiming-normal convs, zero bias; OpenPose starts the
            trunk from ImageNet VGG-19 weights, which nothing here downloads).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = OPENPOSE_HAND['out_channels'],
                 num_stages: int = OPENPOSE_HAND['num_stages'], widen_factor: float = 1.0,
                 init_cfg=dict(type='Kaiming', layer='Conv2d', mode='fan_in',
                               nonlinearity='relu', bias=0.0)):
        super().__init__(init_cfg)
        if not isinstance(num_stages, int) or num_stages < 1:
            raise ValueError(f'OpenPoseHandNet: num_stages must be an int >= 1, got '
                             f'{num_stages!r}')
        if widen_factor <= 0:
            raise ValueError(f'OpenPoseHandNet: widen_factor must be > 0, got {widen_factor}')
        w = lambda c: max(1, int(round(c * widen_factor)))  # noqa: E731
        cfg = OPENPOSE_HAND
        layers, c = [], in_channels
        for v in cfg['trunk']:
            if v == 'M':
                # Caffe pools round up (ceil); equal to floor on the even sizes of 368 / 8
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers += _conv(c, w(v), 3)
                c = w(v)
        feat = w(cfg['feat_channels'])
        self.trunk = nn.Sequential(*layers, *_conv(c, feat, 3))
        self.stages = nn.ModuleList([nn.Sequential(
            *_conv(feat, w(cfg['stage1_channels']), 1),
            *_conv(w(cfg['stage1_channels']), out_channels, 1, relu=False))])
        sc, k = w(cfg['stage_channels']), cfg['stage_kernel']
        for _ in range(num_stages - 1):
            convs = _conv(out_channels + feat, sc, k)
            for _ in range(cfg['stage_convs'] - 1):
                convs += _conv(sc, sc, k)
            self.stages.append(nn.Sequential(*convs, *_conv(sc, sc, 1),
                                             *_conv(sc, out_channels, 1, relu=False)))
        self.num_stages, self.out_channels = num_stages, out_channels

    def forward(self, x: Tensor) -> List[Tensor]:
        feat = self.trunk(x)
        outs = [self.stages[0](feat)]
        for stage in self.stages[1:]:
            outs.append(stage(torch.cat([outs[-1], feat], 1)))
        return outs


@MODELS.register_module()
class OpenPoseHandHead(CPMHead):
    """MMPose's :class:`CPMHead` over OpenPose's stage maps with a trailing background map.

    ``forward`` returns the keypoint maps (the first ``out_channels - 1`` channels) of every
    stage, so decoding, flip test and ``output_heatmaps`` are CPMHead's on 21 maps; ``loss``
    also trains the background map (target max(0, 1 - max_k H_k), weight 1).

    Args:
        in_channels / out_channels: maps per stage including the background (22).
        num_stages: stages (6).
        loss, decoder, init_cfg: as :class:`CPMHead` (no deconv or final layers: the
            backbone's maps are the output, as in OpenPose).
    """

    def __init__(self, in_channels: int = OPENPOSE_HAND['out_channels'],
                 out_channels: int = OPENPOSE_HAND['out_channels'],
                 num_stages: int = OPENPOSE_HAND['num_stages'],
                 loss: dict = dict(type='KeypointMSELoss', use_target_weight=True),
                 decoder=None, init_cfg=None):
        if in_channels != out_channels or out_channels < 2:
            raise ValueError('OpenPoseHandHead reads the backbone maps as they are: in_channels '
                             f'must equal out_channels (>= 2), got {in_channels}, {out_channels}')
        super().__init__(in_channels, out_channels, num_stages, deconv_out_channels=None,
                         final_layer=None, loss=loss, decoder=decoder, init_cfg=init_cfg)

    def _stage_maps(self, feats: Sequence[Tensor]) -> List[Tensor]:
        if len(feats) != self.num_stages:
            raise ValueError(f'OpenPoseHandHead: {len(feats)} stage maps for '
                             f'num_stages={self.num_stages}')
        for f in feats:
            if f.shape[1] != self.out_channels:
                raise ValueError(f'OpenPoseHandHead: stage maps have {f.shape[1]} channels, '
                                 f'expected {self.out_channels} (keypoints + background)')
        return list(feats)

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Keypoint maps (without the background) of every stage."""
        return [f[:, :-1] for f in self._stage_maps(feats)]

    @staticmethod
    def background_target(heatmaps: Tensor) -> Tensor:
        """max(0, 1 - max_k H_k): 1 far from every keypoint, 0 on one. (B, 1, h, w)."""
        return (1 - heatmaps.max(dim=1, keepdim=True)[0]).clamp_min(0)

    def loss(self, feats: Sequence[Tensor], batch_data_samples, train_cfg: dict = {}) -> dict:
        maps = self._stage_maps(feats)
        gt = torch.stack([d.gt_fields.heatmaps for d in batch_data_samples])
        weights = torch.cat([d.gt_instance_labels.keypoint_weights for d in batch_data_samples])
        if gt.shape[1] != self.out_channels - 1:
            raise ValueError(f'OpenPoseHandHead: {gt.shape[1]} target heatmaps, expected '
                             f'{self.out_channels - 1} keypoints')
        gt_all = torch.cat([gt, self.background_target(gt)], 1)
        w_all = torch.cat([weights, weights.new_ones(len(weights), 1)], 1)
        losses = dict()
        for i, pred in enumerate(maps):
            loss_fn = self.loss_module[i] if isinstance(self.loss_module, nn.ModuleList) \
                else self.loss_module
            loss_i = loss_fn(pred, gt_all, w_all)
            losses['loss_kpt'] = losses['loss_kpt'] + loss_i if 'loss_kpt' in losses else loss_i
        from mmpose.evaluation.functional import pose_pck_accuracy
        from mmpose.utils.tensor_utils import to_numpy
        _, acc, _ = pose_pck_accuracy(output=to_numpy(maps[-1][:, :-1]), target=to_numpy(gt),
                                      mask=to_numpy(weights) > 0)
        losses['acc_pose'] = torch.tensor(acc, device=gt.device)
        return losses


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def stage_shapes(net: OpenPoseHandNet, size: int = OPENPOSE_HAND['input_size']
                 ) -> Tuple[Tuple[int, ...], ...]:
    """Output shapes of every stage for a (1, 3, size, size) input."""
    with torch.no_grad():
        return tuple(tuple(o.shape) for o in net(torch.zeros(1, 3, size, size)))
