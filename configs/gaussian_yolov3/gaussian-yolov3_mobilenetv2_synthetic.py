# Gaussian YOLOv3 on the synthetic shapes: the baseline YOLOv3-MobileNetV2 recipe with the
# Gaussian head (NLL box loss, uncertainty-aware score); everything else identical.
_base_ = './yolov3_mobilenetv2_synthetic.py'

model = dict(
    bbox_head=dict(
        type='GaussianYOLOV3Head',
        loss_xy=None,
        loss_wh=None,
        loss_bbox=dict(type='GaussianNLLLoss', sigma_offset=0.3, eps=1e-9, reduction='sum',
                       loss_weight=1.0),
        # the exact gradient of eq. 5 through the sigmoid: the benchmark figures in the README
        # (benchmarks/gaussian_yolo.py) were measured with it; 'darknet' is the official one
        box_gradient='autograd',
        uncertainty_score=True))
# draws each predicted box's bbox_std as dashed outer/inner boxes (mmext.visualization)
visualizer = dict(type='UncertaintyDetLocalVisualizer')
