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

Anchor assignment, objectness and class losses and the box coding are YOLOv3's, unchanged.
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import YOLOV3Head
from mmdet.models.utils import filter_scores_and_topk, multi_apply
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptConfigType, OptInstanceList
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS

NUM_GAUSSIAN = 8  # mu and sigma of tx, ty, tw, th


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
    divided by the network input's (``batch_input_shape``). This is what the official code's
    gradients amount to (its ``scale = 2 - w*h`` times darknet's 1/2); the paper writes
    ``gamma = omega_scale * delta_obj`` with ``omega_scale = 2 - w * h``, the same up to that
    constant: ``loss_bbox=dict(loss_weight=2.0)`` gives the paper's scale exactly.
    As in mmdet's YOLOv3, losses are summed over anchors and images.

    The official code back-propagates its sigma gradient straight into the conv output
    (darknet skips the logistic's derivative there); here autograd goes through the sigmoid.

    Args:
        num_classes (int): object classes (>= 1).
        in_channels (Sequence[int]): input channels per scale (as YOLOV3Head).
        loss_bbox (dict): the box loss, called as ``loss(mu, sigma, target, weight=...)``.
            Default :class:`~mmext.models.losses.GaussianNLLLoss` with the official code's
            ``sigma_offset=0.3`` stabiliser (``sigma_offset=0`` is the paper's eq. 5).
        uncertainty_score (bool): multiply the score by ``1 - mean(sigma)`` at test time
            (the paper's detection criterion). Default True; False scores as YOLOv3 (the
            paper's loss-only ablation).
        loss_xy, loss_wh: must be None (``loss_bbox`` replaces YOLOv3's two box losses); they
            are accepted so a config inheriting mmdet's YOLOv3 can set them to None.
        **kwargs: everything else :class:`mmdet.models.dense_heads.YOLOV3Head` takes
            (``out_channels``, ``anchor_generator``, ``loss_cls``, ``loss_conf``, ``train_cfg``,
            ``test_cfg`` ...).

    Predictions carry ``bbox_uncertainty`` (N, 4): the sigmas of tx, ty, tw, th, in (0, 1).
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

    def _split(self, pred: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Raw (..., num_attrib) -> mu (tx, ty in (0, 1), tw, th), sigma, objectness, cls logits."""
        mu = torch.cat([pred[..., :2].sigmoid(), pred[..., 2:4]], dim=-1)
        sigma = pred[..., 4:NUM_GAUSSIAN].sigmoid()
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
        code. Each result also has ``bbox_uncertainty`` (N, 4): sigma of tx, ty, tw, th.
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
        bboxes = self.bbox_coder.decode(anchors, mu, torch.cat(strides))

        results_list = []
        for img_bboxes, scores, obj, sig, img_meta in zip(bboxes, cls_scores, objectness, sigma,
                                                          batch_img_metas):
            conf_thr = cfg.get('conf_thr', -1)
            if conf_thr > 0:
                keep = obj >= conf_thr
                img_bboxes, scores, obj, sig = img_bboxes[keep], scores[keep], obj[keep], sig[keep]
            scores, labels, keep_idxs, _ = filter_scores_and_topk(
                scores, cfg.get('score_thr', 0), cfg.get('nms_pre', -1))
            factors = obj[keep_idxs]
            if self.uncertainty_score:
                factors = factors * (1 - sig[keep_idxs].mean(dim=-1))
            results = InstanceData(scores=scores, labels=labels, bboxes=img_bboxes[keep_idxs],
                                   score_factors=factors, bbox_uncertainty=sig[keep_idxs])
            results_list.append(self._bbox_post_process(results=results, cfg=cfg,
                                                        rescale=rescale, with_nms=with_nms,
                                                        img_meta=img_meta))
        return results_list

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
        num_imgs = len(batch_img_metas)
        device = pred_maps[0].device
        featmap_sizes = [pred_map.shape[-2:] for pred_map in pred_maps]
        mlvl_anchors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        responsible_flag_list = [
            self.responsible_flags(featmap_sizes, gt.bboxes, device) for gt in batch_gt_instances
        ]
        target_maps_list, neg_maps_list = self.get_targets([mlvl_anchors] * num_imgs,
                                                           responsible_flag_list,
                                                           batch_gt_instances)
        # the network input (padded batch shape) is what darknet normalises boxes by
        input_area = pred_maps[0].new_tensor(
            [float(m['batch_input_shape'][0] * m['batch_input_shape'][1])
             for m in batch_img_metas])
        losses_cls, losses_conf, losses_bbox = multi_apply(self.loss_by_feat_single, pred_maps,
                                                           target_maps_list, neg_maps_list,
                                                           input_area=input_area)
        return dict(loss_cls=losses_cls, loss_conf=losses_conf, loss_bbox=losses_bbox)

    def loss_by_feat_single(self, pred_map: Tensor, target_map: Tensor, neg_map: Tensor,
                            input_area: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Losses of one level; ``target_map`` as :meth:`_get_targets_single` builds it."""
        num_imgs = len(pred_map)
        pred = pred_map.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.num_attrib)
        mu, sigma, pred_conf, pred_label = self._split(pred)

        pos_mask = target_map[..., 4]
        # as YOLOV3Head: an anchor is never both positive and negative, clamp to be sure
        pos_and_neg_mask = (neg_map.float() + pos_mask).clamp(max=1.)
        num_cls = self.num_classes
        target_label = target_map[..., 5:5 + num_cls]
        gt_area = target_map[..., 5 + num_cls] * target_map[..., 6 + num_cls]
        gamma = (2 - gt_area / input_area[:, None]) / 2

        loss_cls = self.loss_cls(pred_label, target_label, weight=pos_mask.unsqueeze(-1))
        loss_conf = self.loss_conf(pred_conf, target_map[..., 4], weight=pos_and_neg_mask)
        loss_bbox = self.loss_bbox(mu, sigma, target_map[..., :4],
                                   weight=(pos_mask * gamma).unsqueeze(-1))
        return loss_cls, loss_conf, loss_bbox

    def _get_targets_single(self, anchors: List[Tensor], responsible_flags: List[Tensor],
                            gt_instances: InstanceData) -> Tuple[Tensor, Tensor]:
        """YOLOv3's targets plus each positive's ground truth width and height (for gamma).

        Returns:
            target_map (Tensor): (num_anchors, 7 + num_classes): tx, ty, tw, th (YOLOBBoxCoder),
                objectness, one-hot classes (label-smoothed if ``one_hot_smoother``), gt w, gt h
                in pixels.
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
        target_map = concat_anchors.new_zeros(concat_anchors.size(0), 7 + num_cls)
        target_map[pos, :4] = self.bbox_coder.encode(sampling.pos_priors,
                                                     sampling.pos_gt_bboxes, anchor_strides[pos])
        target_map[pos, 4] = 1
        one_hot = F.one_hot(gt_instances.labels, num_classes=num_cls).float()
        if self.one_hot_smoother != 0:
            one_hot = one_hot * (1 - self.one_hot_smoother) + self.one_hot_smoother / num_cls
        target_map[pos, 5:5 + num_cls] = one_hot[sampling.pos_assigned_gt_inds]
        gt = get_box_tensor(sampling.pos_gt_bboxes)
        target_map[pos, 5 + num_cls] = gt[:, 2] - gt[:, 0]
        target_map[pos, 6 + num_cls] = gt[:, 3] - gt[:, 1]

        neg_map = concat_anchors.new_zeros(concat_anchors.size(0), dtype=torch.uint8)
        neg_map[sampling.neg_inds] = 1
        return target_map, neg_map
