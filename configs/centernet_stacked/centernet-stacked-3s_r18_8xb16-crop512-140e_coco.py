# CenterNet-R18 with 3 stacked stage(s).
_base_ = './centernet-stacked-2s_r18_8xb16-crop512-140e_coco.py'
synthetic_config = 'configs/centernet_stacked/centernet-stacked-3s_r18_synthetic.py'
model = dict(bbox_head=dict(num_stages=3))
