# The headline config: RetinaNet-SpineNet-49 at 640 on COCO with the paper's recipe.
#   python tools/train.py configs/spinenet_retina.py                    # one process
#   bash tools/dist_train.sh configs/spinenet_retina.py 8                # 8 GPUs (or CPU procs)
# Set `data_root` (or --cfg-options) to your COCO copy; without COCO, try
# configs/spinenet/retinanet_spinenet-49s_synthetic.py. Details: configs/spinenet/README.md.
_base_ = './spinenet/retinanet_spinenet-49_8xb32-640-350e_coco.py'
