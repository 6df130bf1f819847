# yolov3_mobilenetv2_synthetic.py trained on deliberately noisy boxes: every training
# box edge moves by N(0, (0.1 * box size)^2), fixed per annotation like real label noise
# (mmext/datasets/box_jitter.py). Validation boxes stay clean. Used by benchmarks/gaussian_yolo.py.
_base_ = './yolov3_mobilenetv2_synthetic.py'
custom_imports = dict(imports=['mmext', 'mmext.datasets.box_jitter'], allow_failed_imports=False)

img_scale = (320, 320)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='JitterBoxes', ratio=0.1, fixed=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
