# Knowledge distillation on the synthetic shapes, CenterNet pair (the one that learns on a CPU):
# CenterNet-SpineNet-49S (the demo detector, bbox mAP 0.230 after 20 epochs, seed 0) teaches
# CenterNet-MixNet-S (./centernet_mixnet-s_synthetic.py). Student loss: CenterNet's heatmap /
# wh / offset losses + w * T^2 * per-class binary KL between the softened heatmaps (sigmoid
# form; the heatmaps are mapped back to logits), averaged over heatmap locations. Train the teacher
# first (`make demo` writes the same checkpoint):
#   python tools/train.py configs/spinenet/centernet_spinenet-49s_synthetic.py \
#       --work-dir work_dirs/demo_spinenet
# Evaluate the distilled student with ./centernet_mixnet-s_synthetic.py. benchmarks/distillation.py
# runs teacher, student and distilled student in one go.
_base_ = './centernet_mixnet-s_synthetic.py'

model = dict(
    type='DistillationSingleStageDetector',
    teacher_config='configs/spinenet/centernet_spinenet-49s_synthetic.py',
    teacher_ckpt='work_dirs/demo_spinenet/epoch_20.pth',
    # averaged over all heatmap locations (background included), the KL is small next to the
    # focal loss normalised by the number of objects, hence the weight
    distill_loss=dict(type='SoftTargetDistillLoss', temperature=2.0, loss_weight=5.0),
    feature_loss=None)
