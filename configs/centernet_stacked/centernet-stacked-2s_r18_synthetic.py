# The demo's CenterNet-R18 on the synthetic shapes with two stacked stages.
_base_ = '../demo/centernet_r18_synthetic.py'
model = dict(
    bbox_head=dict(
        type='CenterNetStackedHead',
        num_stages=2,
        refine_inputs=('heatmap', ),
        refine_convs=2))
