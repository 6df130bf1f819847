# Plain student of the synthetic RetinaNet pair: ../mixnet/retinanet_mixnet-s_synthetic.py with
# the anchors of its SpineNet teacher (octave_base_scale 3). Evaluate distilled checkpoints with it.
_base_ = '../mixnet/retinanet_mixnet-s_synthetic.py'
model = dict(bbox_head=dict(anchor_generator=dict(octave_base_scale=3)))
