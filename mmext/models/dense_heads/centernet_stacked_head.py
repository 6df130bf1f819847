"""CenterNet with stacked refinement stages (CPM-style intermediate supervision).

Zhou et al., "Objects as Points" (arXiv:1904.07850) predict a class-centre heatmap, box size and
centre offset from one stride-4 feature map. Following Convolutional Pose Machines (Wei et al.,
CVPR 2016), each later *stage* here refines the previous stage's predictions: it sees the neck
features concatenated with the previous stage's heatmap (after sigmoid; optionally its wh and
offset maps), passes them through a small conv block and predicts a new heatmap, wh and offset.
Every stage is supervised with CenterNet's losses on targets computed once per batch; the stage
losses are weighted (default: averaged over stages, as the two-stack Hourglass-104 CenterNet
averages its stacks). Prediction uses the last stage (or any stage, ``test_stage``).

With ``num_stages=1`` this is exactly mmdet's :class:`CenterNetHead` (same parameters, names,
outputs and losses), so mmdet CenterNet checkpoints load into it.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.models.dense_heads import CenterNetHead
from mmengine.model import bias_init_with_prob, normal_init
from torch import Tensor

from ...registry import MODELS

REFINE_INPUTS = ('heatmap', 'wh', 'offset')


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _stage_index(stage, num_stages: int, name: str = 'stage') -> int:
    """0-based index of a 1-based (or negative, -1 = last) stage; a clear error otherwise."""
    if not _is_int(stage) or not (1 <= stage <= num_stages or -num_stages <= stage <= -1):
        raise ValueError(f'CenterNetStackedHead: {name}={stage!r} is not a stage of '
                         f'1..{num_stages} (or -1..-{num_stages})')
    return stage - 1 if stage > 0 else num_stages + stage


@MODELS.register_module()
class CenterNetStackedHead(CenterNetHead):
    """CenterNet head with ``num_stages`` refinement stages.

    Args:
        in_channels (int): channels of the single input feature map (e.g. 64 from
            ``CTResNetNeck``).
        feat_channels (int): hidden channels of each prediction branch (as CenterNetHead).
        num_classes (int): number of classes.
        num_stages (int): stages, >= 1. Stage 1 is CenterNet's own head.
        stage_loss_weights (Sequence[float], optional): weight (>= 0) of each stage's losses;
            default ``1 / num_stages`` each (the Hourglass-104 CenterNet average).
        refine_inputs (Sequence[str]): which previous-stage predictions a stage sees, from
            ``('heatmap', 'wh', 'offset')``; the heatmap enters after its sigmoid. Default
            ``('heatmap',)``: CPM passes belief maps only.
        refine_channels (int, optional): width (>= 1) of each stage's conv block. Default
            None: ``in_channels``.
        refine_convs (int): conv + ReLU layers in each stage's block. Default 2.
        refine_kernel (int): odd kernel size of those convs. Default 3 (two 3x3 convs add about
            4 feature pixels of context per stage). A Convolutional Pose Machines stage (Wei et
            al., CVPR 2016) is ``refine_convs=3, refine_kernel=11, refine_channels=128``: about
            30 pixels, the large context its argument for stacking rests on.
        refine_dilation (int): dilation of those convs (context without more weights).
            Default 1.
        test_stage (int): stage used for prediction, 1-based or negative (-1 = last).
        **kwargs: everything :class:`mmdet.models.dense_heads.CenterNetHead` takes (losses,
            ``test_cfg`` ...). Each loss is tried once on tiny maps when the head is built, so
            one that cannot work on CenterNet's maps (an IoU loss as ``loss_wh`` ...) is an
            error then, not at the first training step.

    Losses are logged per stage as ``loss_center_heatmap_s1``, ``loss_wh_s1`` ... (with one
    stage: mmdet's ``loss_center_heatmap``, ``loss_wh``, ``loss_offset``).
    """

    def __init__(self,
                 in_channels: int,
                 feat_channels: int,
                 num_classes: int,
                 num_stages: int = 2,
                 stage_loss_weights: Optional[Sequence[float]] = None,
                 refine_inputs: Sequence[str] = ('heatmap', ),
                 refine_channels: Optional[int] = None,
                 refine_convs: int = 2,
                 refine_kernel: int = 3,
                 refine_dilation: int = 1,
                 test_stage: int = -1,
                 **kwargs) -> None:
        if not _is_int(num_stages) or num_stages < 1:
            raise ValueError(f'CenterNetStackedHead: num_stages={num_stages!r} must be an '
                             f'integer >= 1')
        if 'loss_bbox' in kwargs:
            raise ValueError(
                f"CenterNetStackedHead: loss_bbox={kwargs['loss_bbox']} is not an argument: "
                f'CenterNet regresses boxes with loss_wh (box size) and loss_offset (centre '
                f'offset), each an element-wise loss such as L1Loss')
        if stage_loss_weights is None:
            stage_loss_weights = [1.0 / num_stages] * num_stages
        if len(stage_loss_weights) != num_stages:
            raise ValueError(f'CenterNetStackedHead: stage_loss_weights={stage_loss_weights} '
                             f'needs one weight per stage ({num_stages})')
        if not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0
                   for w in stage_loss_weights):
            raise ValueError(f'CenterNetStackedHead: stage_loss_weights={stage_loss_weights} '
                             f'must be numbers >= 0')
        bad = [r for r in refine_inputs if r not in REFINE_INPUTS]
        if bad or not refine_inputs:
            raise ValueError(f'CenterNetStackedHead: refine_inputs={tuple(refine_inputs)} must '
                             f'be a non-empty subset of {REFINE_INPUTS}')
        _stage_index(test_stage, num_stages, 'test_stage')
        if refine_channels is not None and (not _is_int(refine_channels) or refine_channels < 1):
            raise ValueError(f'CenterNetStackedHead: refine_channels={refine_channels!r} must be '
                             f'an integer >= 1, or None for in_channels ({in_channels})')
        if not _is_int(refine_convs) or refine_convs < 1:
            raise ValueError(f'CenterNetStackedHead: refine_convs={refine_convs!r} must be an '
                             f'integer >= 1')
        super().__init__(in_channels, feat_channels, num_classes, **kwargs)
        self._check_losses()
        self.num_stages = num_stages
        self.stage_loss_weights = list(stage_loss_weights)
        self.refine_inputs = tuple(refine_inputs)
        self.test_stage = test_stage
        if not _is_int(refine_kernel) or refine_kernel < 1 or refine_kernel % 2 == 0:
            raise ValueError(f'CenterNetStackedHead: refine_kernel={refine_kernel!r} must be an '
                             f'odd integer >= 1 (same-size output)')
        if not _is_int(refine_dilation) or refine_dilation < 1:
            raise ValueError(f'CenterNetStackedHead: refine_dilation={refine_dilation!r} must '
                             f'be an integer >= 1')
        refine_channels = in_channels if refine_channels is None else refine_channels
        prev = {'heatmap': num_classes, 'wh': 2, 'offset': 2}
        prev_channels = sum(prev[r] for r in self.refine_inputs)
        self.refine_blocks = nn.ModuleList()
        self.stage_heads = nn.ModuleList()
        for _ in range(num_stages - 1):
            layers, c = [], in_channels + prev_channels
            for _ in range(refine_convs):
                layers += [nn.Conv2d(c, refine_channels, refine_kernel,
                                     padding=refine_dilation * (refine_kernel - 1) // 2,
                                     dilation=refine_dilation), nn.ReLU(inplace=True)]
                c = refine_channels
            self.refine_blocks.append(nn.Sequential(*layers))
            self.stage_heads.append(nn.ModuleDict(dict(
                heatmap=self._build_head(refine_channels, feat_channels, num_classes),
                wh=self._build_head(refine_channels, feat_channels, 2),
                offset=self._build_head(refine_channels, feat_channels, 2))))

    def _check_losses(self) -> None:
        """Call each loss once on tiny maps the way :meth:`loss_by_feat` does, so that a loss
        of the wrong kind (e.g. an IoU loss, which wants boxes) fails when the model is built,
        not at the first training step."""
        wh = torch.rand(1, 2, 3, 3)
        heatmap = torch.rand(1, self.num_classes, 3, 3)
        calls = dict(loss_center_heatmap=lambda f: f(heatmap, heatmap.clone(), avg_factor=1),
                     loss_wh=lambda f: f(wh, wh.clone(), torch.ones_like(wh), avg_factor=2),
                     loss_offset=lambda f: f(wh, wh.clone(), torch.ones_like(wh), avg_factor=2))
        wanted = dict(loss_center_heatmap='a heatmap loss such as GaussianFocalLoss',
                      loss_wh='an element-wise regression loss such as L1Loss',
                      loss_offset='an element-wise regression loss such as L1Loss')
        for name, call in calls.items():
            loss = getattr(self, name)
            try:
                value = call(loss)
                ok = isinstance(value, Tensor) and value.dim() == 0
            except Exception as e:  # noqa: BLE001  (any failure means the wrong loss)
                value, ok = type(e).__name__ + (f': {e}' if str(e) else ''), False
            if not ok:
                raise ValueError(
                    f'CenterNetStackedHead: {name}={type(loss).__name__} does not work on '
                    f'CenterNet\'s (N, C, H, W) maps (called as in loss_by_feat it gave '
                    f'{value}); use {wanted[name]}')

    def init_weights(self) -> None:
        super().init_weights()
        # later stages start like stage 1: heatmap prior 0.1, small wh/offset weights
        for heads in self.stage_heads:
            heads['heatmap'][-1].bias.data.fill_(bias_init_with_prob(0.1))
            for name in ('wh', 'offset'):
                for m in heads[name].modules():
                    if isinstance(m, nn.Conv2d):
                        normal_init(m, std=0.001)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tuple[Tensor, ...]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Returns (heatmaps, whs, offsets), each a list over *stages* of one level's maps."""
        if len(x) != 1:
            raise ValueError(
                f'CenterNetStackedHead takes one feature map (one stride, e.g. 4 from '
                f'CTResNetNeck), got {len(x)} levels with shapes '
                f'{[tuple(f.shape) for f in x]}; select one, e.g. backbone out_indices=(0,)')
        feat = x[0]
        hm, wh, off = self.forward_single(feat)
        heatmaps, whs, offsets = [hm], [wh], [off]
        for block, heads in zip(self.refine_blocks, self.stage_heads):
            prev = dict(heatmap=heatmaps[-1], wh=whs[-1], offset=offsets[-1])
            y = block(torch.cat([feat] + [prev[r] for r in self.refine_inputs], dim=1))
            heatmaps.append(heads['heatmap'](y).sigmoid())
            whs.append(heads['wh'](y))
            offsets.append(heads['offset'](y))
        return heatmaps, whs, offsets

    # --------------------------------------------------------------------- loss
    def _check_num_stages(self, *stage_outputs: Sequence[Tensor]) -> None:
        counts = [len(outputs) for outputs in stage_outputs]
        if counts != [self.num_stages] * 3:
            raise ValueError(
                f'CenterNetStackedHead: got {counts} (heatmap, wh, offset) stage outputs, '
                f'needs {self.num_stages} of each (num_stages), as forward() returns them')

    def _key(self, name: str, stage: int) -> str:
        return name if self.num_stages == 1 else f'{name}_s{stage + 1}'

    def loss_by_feat(self, center_heatmap_preds, wh_preds, offset_preds, batch_gt_instances,
                     batch_img_metas, batch_gt_instances_ignore=None) -> dict:
        """CenterNet's losses for every stage, on targets computed once for the batch."""
        self._check_num_stages(center_heatmap_preds, wh_preds, offset_preds)
        gt_bboxes = [g.bboxes for g in batch_gt_instances]
        gt_labels = [g.labels for g in batch_gt_instances]
        targets, avg_factor = self.get_targets(gt_bboxes, gt_labels,
                                               center_heatmap_preds[0].shape,
                                               batch_img_metas[0]['batch_input_shape'])
        weight = targets['wh_offset_target_weight']
        losses = {}
        for s, (hm, wh, off) in enumerate(zip(center_heatmap_preds, wh_preds, offset_preds)):
            w = self.stage_loss_weights[s]
            # as CenterNetHead: wh/offset have 2 channels, hence avg_factor * 2
            losses[self._key('loss_center_heatmap', s)] = w * self.loss_center_heatmap(
                hm, targets['center_heatmap_target'], avg_factor=avg_factor)
            losses[self._key('loss_wh', s)] = w * self.loss_wh(
                wh, targets['wh_target'], weight, avg_factor=avg_factor * 2)
            losses[self._key('loss_offset', s)] = w * self.loss_offset(
                off, targets['offset_target'], weight, avg_factor=avg_factor * 2)
        return losses

    # ------------------------------------------------------------------ predict
    def predict_by_feat(self, center_heatmap_preds, wh_preds, offset_preds,
                        batch_img_metas=None, rescale=True, with_nms=False, stage=None):
        """Boxes from one stage (default ``test_stage``).

        Unlike mmdet's head, a missing ``border`` meta key (pipelines without
        ``RandomCenterCropPad``, where the image sits at the canvas' top-left) means no border.
        """
        self._check_num_stages(center_heatmap_preds, wh_preds, offset_preds)
        s = _stage_index(self.test_stage if stage is None else stage, self.num_stages)
        metas = [m if 'border' in m else {**m, 'border': (0, 0, 0, 0)}
                 for m in batch_img_metas]
        return super().predict_by_feat([center_heatmap_preds[s]], [wh_preds[s]],
                                       [offset_preds[s]], metas, rescale=rescale,
                                       with_nms=with_nms)
