# Knowledge distillation (Hinton et al., arXiv:1503.02531) on COCO: RetinaNet-SpineNet-49 @640
# (configs/spinenet_retina.py, 28.5 M params) teaches RetinaNet-MixNet-S-FPN (11.7 M). Loss of the
# student: its own focal + L1 losses + w * T^2 * per-class binary KL of the softened class scores
# of every level and anchor (sigmoid form: RetinaNet's classes are independent sigmoids).
# The teacher sees the student's batch (re-normalised to its own mean/std); padding to multiples
# of 128, which SpineNet needs, is set for the student's batch here (padding adds no parameters).
# Set `teacher_ckpt` to a trained SpineNet-49 checkpoint. The saved checkpoints hold the student
# only: evaluate with ./retinanet_mixnet-s_fpn_spinenet-anchors_1x_coco.py.
_base_ = './retinanet_mixnet-s_fpn_spinenet-anchors_1x_coco.py'

teacher_config = 'configs/spinenet_retina.py'
teacher_ckpt = 'checkpoints/retinanet_spinenet-49_640_coco.pth'  # set to your trained teacher
temperature = 2.0
distill_weight = 1.0
model = dict(
    type='DistillationSingleStageDetector',
    teacher_config=teacher_config,
    teacher_ckpt=teacher_ckpt,
    distill_loss=dict(type='SoftTargetDistillLoss', temperature=temperature,
                      loss_weight=distill_weight),
    # feature imitation (off by default): 256-channel FPN P3-P7 vs SpineNet's 256-channel P3-P7
    feature_loss=None,
    data_preprocessor=dict(pad_size_divisor=128))
