"""Gaussian YOLOv3 head: YOLOv3 with a localization uncertainty per box coordinate.

Choi et al., "Gaussian YOLOv3: An Accurate and Fast Object Detector Using Localization
Uncertainty for Autonomous Driving", ICCV 2019 (arXiv:1904.04620). Official code:
jwchoi384/Gaussian_YOLOv3 (``src/gaussian_yolo_layer.c``).

What the paper changes in YOLOv3, and all this head changes in mmdet's :class:`YOLOV3Head`:

* the last 1x1 conv predicts, per anchor, a mean *and* a standard deviation for each of
  tx, ty, tw, th (8 values instead of 4), then objectness and classes;
* the box loss is the negative log-likelihood of the target under each coordinate's Gaussian
  (eq. 5, :class:`~mmext.models.losses.GaussianNLLLoss`), weighted per ground truth box;
* the detection score is objectness x class x (1 - mean of the four sigmas), and each
  detection keeps its sigmas as ``pred_instances.bbox_uncertainty``.

Anchor assignment, objectness and class losses and the box coding are YOLOv3's, unchanged:
``loss_by_feat`` and ``get_targets`` are mmdet's; overridden are the per-level loss, the target
map (mmdet's writes the classes into columns ``5:`` of a ``num_attrib``-wide map, which cannot
hold the 4 extra sigma channels) and the post-processing (mmdet's reads objectness from column
4 and keeps no per-box values besides the score).
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import YOLOV3Head
from mmdet.models.utils import filter_scores_and_topk
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptInstanceList
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS

NUM_GAUSSIAN = 8  # mu and sigma of tx, ty, tw, th
BOX_GRADIENTS = ('darknet', 'autograd')


def logistic(x: Tensor, gradient: str = 'autograd') -> Tensor:
    """``sigmoid(x)``; with ``gradient='darknet'`` its backward pass is the identity.

    Darknet computes the box loss's delta with respect to the logistic *outputs* and adds it
    to the conv output unchanged (``delta_gaussian_yolo_box`` writes ``l.delta``, which
    ``backward_gaussian_yolo_layer`` adds to ``net.delta`` without the logistic's derivative).
    The straight-through form below has the sigmoid's value and that backward pass.
    """
    s = x.sigmoid()
    if gradient == 'autograd':
        return s
    return s.detach() + (x - x.detach())


@MODELS.register_module()
class GaussianYOLOV3Head(YOLOV3Head):
    """YOLOv3 head predicting a Gaussian (mu, sigma) for each box coordinate.

    Per anchor the prediction map holds ``9 + num_classes`` values, in this order:
    ``mu_x, mu_y, mu_w, mu_h, sigma_x, sigma_y, sigma_w, sigma_h, objectness, classes...``
    (raw; the mu's are YOLOv3's tx, ty, tw, th, so ``[..., :4]`` decodes as in mmdet's head).
    A sigmoid goes on mu_x, mu_y, every sigma, objectness and classes, as in the paper.
    The darknet layer interleaves mu and sigma; the order here keeps mmdet's box slice.

    Box loss weighting: each positive anchor's NLL is multiplied by
    ``gamma = (2 - w * h) / 2``, where ``w, h`` are the ground truth box's width and height
    divided by the network input's (``batch_input_shape``; without it, as in mmdet's own head
    tests, the input the first level's grid covers: its size times its stride). This is what
    the official code's gradients amount to (its ``scale = 2 - w*h`` times darknet's 1/2); the
    paper writes ``gamma = omega_scale * delta_obj`` with ``omega_scale = 2 - w * h``, the same
    up to that constant: ``loss_bbox=dict(loss_weight=2.0)`` gives the paper's scale exactly.
    As in mmdet's YOLOv3, losses are summed over anchors and images.

    Box gradient (``box_gradient``): the official code applies the NLL's derivative with
    respect to the logistic outputs mu_x, mu_y and the four sigmas to the conv outputs
    directly, skipping the logistic's derivative s (1 - s) <= 1/4 (darknet's YOLOv3 does the
    same for x, y, and mmdet's YOLOv3 matches it by a BCE on the logits). ``'darknet'`` (the
    default) reproduces that gradient; ``'autograd'`` is the exact gradient of eq. 5 through
    the sigmoid, s (1 - s) times smaller at those 6 channels. mu_w, mu_h, objectness and
    classes get the same gradient either way.

    Args:
        num_classes (int): object classes (>= 1).
        in_channels (Sequence[int]): input channels per scale (as YOLOV3Head).
        loss_bbox (dict): the box loss, called as ``loss(mu, sigma, target, weight=...)``.
            Default :class:`~mmext.models.losses.GaussianNLLLoss` with the official code's
            ``sigma_offset=0.3`` stabiliser (``sigma_offset=0`` is the paper's eq. 5).
        box_gradient (str): ``'darknet'`` (default, the official code's) or ``'autograd'``,
            see above.
        uncertainty_score (bool): multiply the score by ``1 - mean(sigma)`` at test time
            (the paper's detection criterion). Default True; False scores as YOLOv3 (the
            paper's loss-only ablation).
        loss_xy, loss_wh: must be None (``loss_bbox`` replaces YOLOv3's two box losses); they
            are accepted so a config inheriting mmdet's YOLOv3 can set them to None.
        **kwargs: everything else :class:`mmdet.models.dense_heads.YOLOV3Head` takes
            (``out_channels``, ``anchor_generator``, ``loss_cls``, ``loss_conf``, ``train_cfg``,
            ``test_cfg`` ...).

    Predictions carry ``bbox_uncertainty`` (N, 4): the sigmas of tx, ty, tw, th, in (0, 1)
    (the official code's ``uc``), and ``bbox_std`` (N, 4): what they amount to in pixels for
    x1, y1, x2, y2 (first order: ``sqrt((stride sigma_x)^2 + (w / 2 sigma_w)^2)`` for x1 and
    x2, likewise for y; rescaled with the boxes).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 loss_bbox: ConfigType = dict(
                     type='GaussianNLLLoss',
                     sigma_offset=0.3,
                     eps=1e-9,
                     reduction='sum',
                     loss_weight=1.0),
                 box_gradient: str = 'darknet',
                 uncertainty_score: bool = True,
                 loss_xy: OptConfigType = None,
                 loss_wh: OptConfigType = None,
                 **kwargs) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'GaussianYOLOV3Head: num_classes={num_classes!r} must be an '
                             f'integer >= 1')
        for name, value in (('loss_xy', loss_xy), ('loss_wh', loss_wh)):
            if value is not None:
                raise ValueError(
                    f'GaussianYOLOV3Head: {name}={dict(value)} is not used: the Gaussian NLL '
                    f'`loss_bbox` replaces YOLOv3\'s loss_xy and loss_wh; set {name}=None')
        if box_gradient not in BOX_GRADIENTS:
            raise ValueError(f'GaussianYOLOV3Head: box_gradient={box_gradient!r} is not one of '
                             f'{BOX_GRADIENTS}')
        if not isinstance(uncertainty_score, bool):
            raise ValueError(f'GaussianYOLOV3Head: uncertainty_score={uncertainty_score!r} '
                             f'must be True or False')
        out_channels = kwargs.get('out_channels', (1024, 512, 256))
        strides = kwargs.get('featmap_strides', (32, 16, 8))
        if not len(in_channels) == len(out_channels) == len(strides):
            raise ValueError(
                f'GaussianYOLOV3Head: in_channels={list(in_channels)}, '
                f'out_channels={list(out_channels)} and featmap_strides={list(strides)} need '
                f'one entry per scale (the same length)')
        # YOLOV3Head insists on building its two box losses; they are dropped right after
        super().__init__(num_classes, in_channels, **kwargs)
        del self.loss_xy, self.loss_wh
        self.loss_bbox = MODELS.build(loss_bbox)
        self.box_gradient = box_gradient
        self.uncertainty_score = uncertainty_score

    @property
    def num_attrib(self) -> int:
        """int: values per anchor: mu and sigma of 4 coordinates, objectness, classes."""
        return NUM_GAUSSIAN + 1 + self.num_classes

    def init_weights(self) -> None:
        """YOLOv3's initialisation with the objectness and class priors moved past the sigmas.

        Sigma biases start at 0 (sigma = 0.5), as darknet's zero-initialised biases.
        """
        super().init_weights()  # writes the priors into columns 4 (objectness) and 5: (classes)
        for conv_pred in self.convs_pred:
            bias = conv_pred.bias.data.view(self.num_base_priors, -1)
            obj_prior, cls_prior = bias[:, 4].clone(), bias[:, 5].clone()
            bias[:, 4:NUM_GAUSSIAN] = 0
            bias[:, NUM_GAUSSIAN] = obj_prior
            bias[:, NUM_GAUSSIAN + 1:] = cls_prior[:, None]

    def _split(self, pred: Tensor,
               gradient: str = 'autograd') -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Raw (..., num_attrib) -> mu (tx, ty in (0, 1), tw, th), sigma, objectness, cls logits."""
        mu = torch.cat([logistic(pred[..., :2], gradient), pred[..., 2:4]], dim=-1)
        sigma = logistic(pred[..., 4:NUM_GAUSSIAN], gradient)
        return mu, sigma, pred[..., NUM_GAUSSIAN], pred[..., NUM_GAUSSIAN + 1:]

    # ------------------------------------------------------------------ predict
    def predict_by_feat(self,
                        pred_maps: Sequence[Tensor],
                        batch_img_metas: Optional[List[dict]],
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """YOLOv3's post-processing, scoring ``objectness * class * (1 - mean sigma)``.

        Filtering is mmdet YOLOv3's: ``conf_thr`` on objectness, ``score_thr`` and ``nms_pre``
        on the class probability; the full score is formed before NMS, as in the official
        code. Each result also has ``bbox_uncertainty`` (N, 4): sigma of tx, ty, tw, th, and
        ``bbox_std`` (N, 4): those in pixels for x1, y1, x2, y2.
        """
        assert len(pred_maps) == self.num_levels
        cfg = copy.deepcopy(self.test_cfg if cfg is None else cfg)
        num_imgs = len(batch_img_metas)
        featmap_sizes = [pred_map.shape[-2:] for pred_map in pred_maps]
        anchors = torch.cat(self.prior_generator.grid_priors(featmap_sizes,
                                                             device=pred_maps[0].device))
        preds, strides = [], []
        for pred, stride in zip(pred_maps, self.featmap_strides):
            preds.append(pred.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.num_attrib))
            strides.append(pred.new_full((preds[-1].size(1), 1), stride))
        mu, sigma, objectness, cls_logits = self._split(torch.cat(preds, dim=1))
        objectness, cls_scores = objectness.sigmoid(), cls_logits.sigmoid()
        strides = torch.cat(strides)
        bboxes = self.bbox_coder.decode(anchors, mu, strides)
        stds = self._pixel_std(bboxes, sigma, strides)

        results_list = []
        for img_bboxes, scores, obj, sig, std, img_meta in zip(
                bboxes, cls_scores, objectness, sigma, stds, batch_img_metas):
            conf_thr = cfg.get('conf_thr', -1)
            if conf_thr > 0:
                keep = obj >= conf_thr
                img_bboxes, scores, obj, sig, std = (img_bboxes[keep], scores[keep], obj[keep],
                                                     sig[keep], std[keep])
            scores, labels, keep_idxs, _ = filter_scores_and_topk(
                scores, cfg.get('score_thr', 0), cfg.get('nms_pre', -1))
            factors = obj[keep_idxs]
            if self.uncertainty_score:
                factors = factors * (1 - sig[keep_idxs].mean(dim=-1))
            std = std[keep_idxs]
            if rescale and 'scale_factor' in img_meta:  # as _bbox_post_process does the boxes
                std = std / std.new_tensor(img_meta['scale_factor']).repeat((1, 2))
            results = InstanceData(scores=scores, labels=labels, bboxes=img_bboxes[keep_idxs],
                                   score_factors=factors, bbox_uncertainty=sig[keep_idxs],
                                   bbox_std=std)
            results_list.append(self._bbox_post_process(results=results, cfg=cfg,
                                                        rescale=rescale, with_nms=with_nms,
                                                        img_meta=img_meta))
        return results_list

    @staticmethod
    def _pixel_std(bboxes: Tensor, sigma: Tensor, strides: Tensor) -> Tensor:
        """Std in pixels of x1, y1, x2, y2 from the sigmas of tx, ty (cells) and tw, th (log).

        x1 = cx - w / 2 with cx = (i + tx) stride and w = anchor_w exp(tw): to first order its
        variance is (stride sigma_x)^2 + (w / 2 sigma_w)^2, and x2's the same.
        """
        wh = bboxes[..., 2:4] - bboxes[..., 0:2]
        std = torch.hypot(strides * sigma[..., 0:2], wh / 2 * sigma[..., 2:4])
        return std.repeat(*([1] * (std.dim() - 1)), 2)

    # --------------------------------------------------------------------- loss
    def loss_by_feat(self,
                     pred_maps: Sequence[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> dict:
        """YOLOv3's assignment; losses ``loss_cls``, ``loss_conf`` (YOLOv3's) and ``loss_bbox``.

        ``loss_bbox`` is the Gaussian NLL of the 4 box targets at each positive anchor, times
        ``gamma = (2 - w * h) / 2`` of its ground truth box (``w, h`` relative to the input).
        """
        gts = []
        for gt, meta in zip(batch_gt_instances, batch_img_metas):
            input_h, input_w = self._input_shape(pred_maps, meta)
            box = get_box_tensor(gt.bboxes)
            area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
            gt = gt.clone()  # gamma travels with its box into _get_targets_single
            gt.box_gamma = (2 - area / (input_h * input_w)) / 2
            gts.append(gt)
        losses = super().loss_by_feat(pred_maps, gts, batch_img_metas, batch_gt_instances_ignore)
        # YOLOV3Head files the third per-level value of loss_by_feat_single as `loss_xy`;
        # here it is the whole Gaussian box loss, and there is no fourth
        return dict(loss_cls=losses['loss_cls'], loss_conf=losses['loss_conf'],
                    loss_bbox=losses['loss_xy'])

    def _input_shape(self, pred_maps: Sequence[Tensor], img_meta: dict) -> Tuple[float, float]:
        """The network input (h, w) that darknet normalises boxes by: the padded batch shape;
        without ``batch_input_shape`` (mmdet's YOLOv3 head needs no image meta at all), the
        area the first level's grid covers, which is the padded input when it is a multiple
        of the largest stride."""
        if 'batch_input_shape' in img_meta:
            return tuple(float(v) for v in img_meta['batch_input_shape'][:2])
        feat_h, feat_w = pred_maps[0].shape[-2:]
        stride_w, stride_h = self.prior_generator.strides[0]
        return float(feat_h * stride_h), float(feat_w * stride_w)

    def loss_by_feat_single(self, pred_map: Tensor, target_map: Tensor,
                            neg_map: Tensor) -> Tuple[Tensor, Tensor, Tensor, None]:
        """Losses of one level: YOLOv3's class and objectness losses and the Gaussian NLL box
        loss; ``target_map`` as :meth:`_get_targets_single` builds it."""
        num_imgs = len(pred_map)
        pred = pred_map.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.num_attrib)
        mu, sigma, pred_conf, pred_label = self._split(pred, self.box_gradient)

        pos_mask = target_map[..., 4]
        # as YOLOV3Head: an anchor is never both positive and negative, clamp to be sure
        pos_and_neg_mask = (neg_map.float() + pos_mask).clamp(max=1.)
        target_label = target_map[..., 5:5 + self.num_classes]
        gamma = target_map[..., 5 + self.num_classes]

        loss_cls = self.loss_cls(pred_label, target_label, weight=pos_mask.unsqueeze(-1))
        loss_conf = self.loss_conf(pred_conf, target_map[..., 4], weight=pos_and_neg_mask)
        loss_bbox = self.loss_bbox(mu, sigma, target_map[..., :4],
                                   weight=(pos_mask * gamma).unsqueeze(-1))
        return loss_cls, loss_conf, loss_bbox, None

    def _get_targets_single(self, anchors: List[Tensor], responsible_flags: List[Tensor],
                            gt_instances: InstanceData) -> Tuple[Tensor, Tensor]:
        """YOLOv3's targets plus each positive's box weight gamma (``gt_instances.box_gamma``,
        set by :meth:`loss_by_feat`).

        Returns:
            target_map (Tensor): (num_anchors, 6 + num_classes): tx, ty, tw, th (YOLOBBoxCoder),
                objectness, one-hot classes (label-smoothed if ``one_hot_smoother``), gamma.
            neg_map (Tensor): (num_anchors, ) uint8, 1 for negatives.
        """
        concat_anchors = torch.cat(anchors)
        anchor_strides = torch.cat([
            concat_anchors.new_full((len(a), ), stride)
            for a, stride in zip(anchors, self.featmap_strides)
        ])
        pred_instances = InstanceData(priors=concat_anchors,
                                      responsible_flags=torch.cat(responsible_flags))
        assign_result = self.assigner.assign(pred_instances, gt_instances)
        sampling = self.sampler.sample(assign_result, pred_instances, gt_instances)

        num_cls = self.num_classes
        pos = sampling.pos_inds
        target_map = concat_anchors.new_zeros(concat_anchors.size(0), 6 + num_cls)
        target_map[pos, :4] = self.bbox_coder.encode(sampling.pos_priors,
                                                     sampling.pos_gt_bboxes, anchor_strides[pos])
        target_map[pos, 4] = 1
        one_hot = F.one_hot(gt_instances.labels, num_classes=num_cls).float()
        if self.one_hot_smoother != 0:
            one_hot = one_hot * (1 - self.one_hot_smoother) + self.one_hot_smoother / num_cls
        target_map[pos, 5:5 + num_cls] = one_hot[sampling.pos_assigned_gt_inds]
        target_map[pos, 5 + num_cls] = gt_instances.box_gamma[sampling.pos_assigned_gt_inds]

        neg_map = concat_anchors.new_zeros(concat_anchors.size(0), dtype=torch.uint8)
        neg_map[sampling.neg_inds] = 1
        return target_map, neg_map
