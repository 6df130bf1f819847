"""A detection visualiser that also draws each box's localization uncertainty.

For predictions that carry ``bbox_std`` (N, 4) -- the standard deviation in pixels of x1, y1,
x2, y2, as :class:`~mmext.models.dense_heads.GaussianYOLOV3Head` predicts it (Choi et al.,
ICCV 2019) -- each box gets a dashed outer box (edges moved out by ``num_sigmas`` std) and a
dashed inner box (moved in by as much, collapsing to the centre line where the box is
narrower): the band between them is where the edge lies with the Gaussian's ~68 % (1 std).
Everything else is mmdet's :class:`DetLocalVisualizer`; instances without ``bbox_std``
(ground truth, other models) are drawn as there.

Configs select it with ``visualizer = dict(type='UncertaintyDetLocalVisualizer', ...)``;
mmdet's ``DetInferencer``, ``tools/test.py --show-dir`` and ``DetVisualizationHook`` then draw
the uncertainty.
"""
from typing import List, Optional

import numpy as np
import torch
from ..registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer
from mmdet.visualization.palette import get_palette
from mmengine.structures import InstanceData


@VISUALIZERS.register_module()
class UncertaintyDetLocalVisualizer(DetLocalVisualizer):
    """:class:`DetLocalVisualizer` plus each predicted box's ``bbox_std`` as outer/inner boxes.

    Args:
        num_sigmas (float): how many standard deviations the outer and inner boxes lie from
            the box (> 0). Default 1.
        uncertainty_line_style (str): matplotlib line style of those boxes. Default ``'--'``.
        **kwargs: everything :class:`DetLocalVisualizer` takes.
    """

    def __init__(self, name: str = 'visualizer', *args, num_sigmas: float = 1.0,
                 uncertainty_line_style: str = '--', **kwargs) -> None:
        if not isinstance(num_sigmas, (int, float)) or isinstance(num_sigmas, bool) \
                or num_sigmas <= 0:
            raise ValueError(f'UncertaintyDetLocalVisualizer: num_sigmas={num_sigmas!r} must be '
                             f'a number > 0')
        super().__init__(name, *args, **kwargs)
        self.num_sigmas = num_sigmas
        self.uncertainty_line_style = uncertainty_line_style

    def _draw_instances(self, image: np.ndarray, instances: InstanceData,
                        classes: Optional[List[str]],
                        palette: Optional[List[tuple]]) -> np.ndarray:
        image = super()._draw_instances(image, instances, classes, palette)
        if 'bbox_std' not in instances or 'bboxes' not in instances or len(instances) == 0:
            return image
        self.set_image(image)
        outer, inner = uncertainty_boxes(instances.bboxes, instances.bbox_std, self.num_sigmas,
                                         image.shape[:2])
        labels = instances.labels
        bbox_color = palette if self.bbox_color is None else self.bbox_color
        bbox_palette = get_palette(bbox_color, int(labels.max()) + 1)
        colors = [bbox_palette[label] for label in labels]
        for boxes in (outer, inner):
            self.draw_bboxes(boxes, edge_colors=colors, alpha=self.alpha,
                             line_widths=max(1, self.line_width / 2),
                             line_styles=self.uncertainty_line_style)
        return self.get_image()


def uncertainty_boxes(bboxes, std, num_sigmas: float = 1.0, image_hw=None):
    """(outer, inner) boxes: each edge of ``bboxes`` moved out / in by ``num_sigmas * std``.

    The inner box never inverts (an edge stops at the box's centre line); with ``image_hw``
    both are clipped to the image.
    """
    bboxes, std = torch.as_tensor(bboxes).float(), torch.as_tensor(std).float()
    offset = num_sigmas * std * std.new_tensor([-1, -1, 1, 1])
    outer = bboxes + offset
    centre = (bboxes[:, :2] + bboxes[:, 2:]) / 2
    inner = bboxes - offset
    inner = torch.cat([torch.minimum(inner[:, :2], centre), torch.maximum(inner[:, 2:], centre)],
                      dim=1)
    if image_hw is not None:
        h, w = image_hw
        limit = std.new_tensor([w, h, w, h])
        outer = torch.minimum(outer.clamp(min=0), limit)
        inner = torch.minimum(inner.clamp(min=0), limit)
    return outer, inner
