# Gaussian YOLOv3 on Darknet-53 with mmdet's 416 recipe (multi-scale 320-416 training).
_base_ = 'mmdet::yolo/yolov3_d53_8xb8-ms-416-273e_coco.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='GaussianYOLOV3Head',
        loss_xy=None,
        loss_wh=None,
        loss_bbox=dict(type='GaussianNLLLoss', sigma_offset=0.3, eps=1e-9, reduction='sum',
                       loss_weight=1.0),
        box_gradient='darknet',  # the official code's gradient at the conv output
        uncertainty_score=True))
# draws each predicted box's bbox_std as dashed outer/inner boxes (mmext.visualization)
visualizer = dict(type='UncertaintyDetLocalVisualizer')
