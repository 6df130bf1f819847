# RetinaNet-SpineNet-190 at 1280 with the official recipe (tensorflow/tpu
# configs/spinenet/spinenet190_retinanet.yaml, 52.0 AP): model_id 190, a 7-conv 512-wide head,
# output_size 1280, scale jitter [0.1, 1.9], anchor size 4 (default), stochastic depth 0.2, and
# a shorter, hotter schedule: 185,200 iterations, lr 0.3, x0.1 at 171,310 and 180,570. The rest
# as retinanet_spinenet-49_official-8xb32-640-231k_coco.py.
_base_ = './retinanet_spinenet-143_official-8xb32-1280-231k_coco.py'
arch = '190'
endpoint_channels = head_channels = 512
head_convs = 7
model = dict(
    backbone=dict(arch=arch, drop_path_rate=0.2),
    bbox_head=dict(in_channels=endpoint_channels, feat_channels=head_channels,
                   stacked_convs=head_convs))
max_iters = 185200
base_lr = 0.3
warmup_iters, warmup_lr = 2000, 0.0067
lr_steps = [171310, 180570]  # learning_rate_levels 0.03, 0.003
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=lr_steps,
         gamma=0.1),
]
