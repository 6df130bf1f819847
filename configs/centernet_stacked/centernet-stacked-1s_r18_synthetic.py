_base_ = './centernet-stacked-2s_r18_synthetic.py'
model = dict(bbox_head=dict(num_stages=1))
