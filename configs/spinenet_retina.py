# The headline config: RetinaNet-SpineNet-49 at 640 on COCO with the paper's recipe.
#   python tools/train.py configs/spinenet_retina.py                    # one process
#   bash tools/dist_train.sh configs/spinenet_retina.py 8                # 8 GPUs (or CPU procs)
# Point it at your COCO copy with --cfg-options (without COCO, the tools print the exact keys to
# override); to try it without COCO, train
# configs/spinenet/centernet_spinenet-49s_synthetic.py. Model card: configs/spinenet/README.md.
_base_ = './spinenet/retinanet_spinenet-49_8xb32-640-350e_coco.py'
