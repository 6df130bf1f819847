# SNIPER data set-up for COCO (Singh et al., NeurIPS 2018, arXiv:1805.09300; official code
# mahyarnajibi/SNIPER, configs/faster/sniper_res101_e2e.yml), a dataset base like mmdet's
# coco_detection.py, shared by the SNIPER detector configs.
# Training: chips, not images -- 512x512 chips on a grid whose step is drawn each epoch as the
# official code draws it (randint(56, 60); the paper says 32), at scales 3.0, 1.667 and
# 512/max(w, h) ('fit'), listed finest first as the official config lists them, each with its
# valid range of sqrt(box area) in original pixels. Test: the full image at the same three
# scales (TestTimeAug, finest first); SNIPERTestLoop (in the detector configs) keeps each scale's
# detections in its test range and merges them with soft-NMS.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'
custom_imports = dict(imports=['mmext'], allow_failed_imports=False)

# 1e5 px stands for the paper's infinity (larger than any image; `inf` does not survive a config
# dump and reload)
sniper = dict(
    chip_size=512,
    stride=(56, 60),  # official chip_worker: np.random.randint(56, 60), re-drawn every epoch
    shuffle_ties=True,  # official cgenerate: candidate chips shuffled before the greedy cover
    scales=(3.0, 1.667, 'fit'),
    valid_ranges=((0, 80), (32, 150), (120, 1e5)),
    min_box_size=10,
    # negative chips: set to the file written by tools/sniper_proposals.py from an RPN trained
    # ~2 epochs with proposal_file=None (the paper's first stage)
    proposal_file=None,
    neg_per_image=2,
    neg_max_proposals=300,
    neg_min_proposals=(25, 10, 10),
)
test_scales = [
    dict(type='Resize', scale_factor=3.0, keep_ratio=True),
    dict(type='Resize', scale_factor=1.667, keep_ratio=True),
    dict(type='Resize', scale=(512, 512), keep_ratio=True),  # 512 / max(w, h)
]
# the detector configs use it as `test_cfg = {{_base_.sniper_test_cfg}}` (schedule bases own
# test_cfg, so this base cannot set it)
sniper_test_cfg = dict(type='SNIPERTestLoop', test_ranges=((0, 90), (32, 180), (75, 1e5)),
                       nms=dict(type='soft_nms', iou_threshold=0.3, sigma=0.55, min_score=1e-3,
                                method='gaussian'),
                       max_per_img=200)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='SNIPERChipCrop'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
sniper_test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='TestTimeAug',
         transforms=[test_scales,  # each inner list: alternatives of one step
                     [dict(type='LoadAnnotations', with_bbox=True)],
                     [dict(type='PackDetInputs',
                           meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                      'scale_factor'))]]),
]
train_dataloader = dict(
    # chips change every epoch: SNIPERSampler hands the epoch to the (persistent) workers
    sampler=dict(type='SNIPERSampler', shuffle=True),
    batch_sampler=None,  # chips are K x K: no aspect-ratio grouping
    dataset=dict(_delete_=True, type='SNIPERDataset',
                 dataset=dict(type='CocoDataset', data_root='data/coco/',
                              ann_file='annotations/instances_train2017.json',
                              data_prefix=dict(img='train2017/'),
                              filter_cfg=dict(filter_empty_gt=True, min_size=32),
                              pipeline=train_pipeline),
                 **sniper))
# validation during training: single scale (fast); tools/test.py: SNIPER's three scales
test_dataloader = dict(dataset=dict(pipeline=sniper_test_pipeline))
# checks the sampler / persistent-worker combination and passes the epoch to other samplers
custom_hooks = [dict(type='SNIPEREpochHook')]
