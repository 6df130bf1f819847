# CenterNet-R18 (mmdet's 512-crop, 140-epoch recipe without DCN: 25.9 AP single-stage) with two
# stacked refinement stages (CPM-style; mmext/models/dense_heads/centernet_stacked_head.py).
# The backbone is ImageNet-initialised as in mmdet's recipe (`torchvision://resnet18`, fetched by
# mmengine on first use; set model.backbone.init_cfg.checkpoint to a local file offline).
_base_ = 'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)
synthetic_config = 'configs/centernet_stacked/centernet-stacked-2s_r18_synthetic.py'

model = dict(
    bbox_head=dict(
        type='CenterNetStackedHead',
        num_stages=2,
        refine_inputs=('heatmap', ),
        refine_convs=2))
