# Plain student of the synthetic RetinaNet pair: ../mixnet/retinanet_mixnet-s_synthetic.py with
# the anchors of its SpineNet teacher (octave_base_scale 3) and inputs padded to multiples of 128
# as the teacher's (SpineNet's P7 has stride 128), so that the hard-label student trains on the
# same batches as the distilled one (../distillation/retinanet_spinenet-49s_to_mixnet-s_synthetic.py)
# and an equal-compute comparison does not charge the padding to distillation alone. Evaluate
# distilled checkpoints with it.
_base_ = '../mixnet/retinanet_mixnet-s_synthetic.py'
model = dict(data_preprocessor=dict(pad_size_divisor=128),
             bbox_head=dict(anchor_generator=dict(octave_base_scale=3)))
