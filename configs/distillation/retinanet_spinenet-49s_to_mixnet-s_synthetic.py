# The COCO pair's recipe on the embedded synthetic shapes (CPU minutes): RetinaNet-SpineNet-49S
# (../spinenet/retinanet_spinenet-49s_synthetic.py) teaches RetinaNet-MixNet-S
# (../mixnet/retinanet_mixnet-s_synthetic.py with the teacher's anchors). Train the teacher first:
#   python tools/train.py configs/spinenet/retinanet_spinenet-49s_synthetic.py \
#       --work-dir work_dirs/retinanet_spinenet-49s_synthetic
# On the CPU (benchmarks/distillation.py --pair retina, 192 px, from scratch) the teacher reaches
# bbox mAP 0.092 in 20 epochs and the plain student far less in 16: RetinaNet's focal-loss head
# learns slowly from scratch; the CenterNet pair (./centernet_spinenet-49s_to_mixnet-s_synthetic.py)
# learns faster. Figures: ./README.md.
_base_ = './retinanet_mixnet-s_synthetic_spinenet-anchors.py'

model = dict(
    type='DistillationSingleStageDetector',
    teacher_config='configs/spinenet/retinanet_spinenet-49s_synthetic.py',
    teacher_ckpt='work_dirs/retinanet_spinenet-49s_synthetic/epoch_20.pth',
    distill_loss=dict(type='SoftTargetDistillLoss', temperature=2.0, loss_weight=1.0),
    feature_loss=None)  # inputs padded to 128 as the teacher's: set in the base
