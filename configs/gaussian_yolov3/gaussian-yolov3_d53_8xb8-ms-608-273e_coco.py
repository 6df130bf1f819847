# Gaussian YOLOv3 (Choi et al., ICCV 2019, arXiv:1904.04620) on Darknet-53: mmdet's YOLOv3
# recipe with the Gaussian head. YOLOv3's loss_xy / loss_wh are replaced by the NLL `loss_bbox`
# (weighted by (2 - w*h)/2 per box, as the official code's gradients); sigma_offset=0.3 is the
# official code's stabiliser (0 = the paper's eq. 5); box_gradient='darknet' is the official
# code's gradient at the conv output ('autograd': the exact one through the sigmoid).
_base_ = 'mmdet::yolo/yolov3_d53_8xb8-ms-608-273e_coco.py'
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
