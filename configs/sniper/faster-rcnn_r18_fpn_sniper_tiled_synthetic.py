# The synthetic SNIPER Faster R-CNN (./faster-rcnn_r18_fpn_sniper_synthetic.py) tested tile by
# tile (mmext/models/detectors/sniper_tiled.py): per scale, 256 px tiles on the chip grid,
# batched, boxes cut by an inner tile border dropped, merged with soft-NMS -- the way to test
# images larger than the detector can take whole. The test pipeline keeps the original size.
_base_ = './faster-rcnn_r18_fpn_sniper_synthetic.py'

tiled_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor')),
]
test_dataloader = dict(dataset=dict(pipeline=tiled_test_pipeline))
test_cfg = dict(_delete_=True, type='SNIPERTiledTestLoop', scales=(2.0, 1.0, 'fit'),
                test_ranges=((0, 48), (20, 136), (64, 1e5)), chip_size=256, batch_size=8,
                border_delta=5,
                nms=dict(type='soft_nms', iou_threshold=0.3, sigma=0.55, min_score=1e-3,
                         method='gaussian'),
                max_per_img=100)
