# Two stages on the "rows" layout (objects in lines, like characters of text): the setting where
# the stacking hypothesis expects refinement to help.
_base_ = './centernet-stacked-2s_r18_synthetic.py'
train_dataloader = dict(dataset=dict(split='train_rows'))
val_dataloader = dict(dataset=dict(split='val_rows'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='data/synthetic/annotations/val_rows.json')
test_evaluator = val_evaluator
