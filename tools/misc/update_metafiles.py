"""Write every ``configs/<family>/metafile.yml`` (MMDetection's metafile schema, read by mim and
model-index) and the top-level ``model-index.yml`` from the configs themselves.

Run after adding or renaming a config: ``python tools/misc/update_metafiles.py``. Epochs /
iterations come from each config's ``train_cfg``, the batch size from the ``NxbM`` part of its name
(else ``train_dataloader.batch_size``); ``Results`` only for figures this repository measured
(the model cards name the command). ``tests/test_model_cards.py`` checks the files agree with
the configs on disk.
"""
import glob
import os.path as osp
import re

import yaml
from mmengine.config import Config


FAMILIES = {
 'spinenet': dict(name='SpineNet', arch=['SpineNet', 'RetinaNet', 'Mask R-CNN'],
   paper=('https://arxiv.org/abs/1912.05027', 'SpineNet: Learning Scale-Permuted Backbone for Recognition and Localization'),
   code='https://github.com/tensorflow/tpu/blob/master/models/official/detection/modeling/architecture/spinenet.py',
   mod='mmext/models/backbones/spinenet.py', extra=['configs/spinenet_retina.py']),
 'mixnet': dict(name='MixNet', arch=['MixConv', 'MixNet', 'RetinaNet', 'SSDLite', 'MobileNetV2'],
   paper=('https://arxiv.org/abs/1907.09595', 'MixConv: Mixed Depthwise Convolutional Kernels'),
   code='https://github.com/tensorflow/tpu/blob/master/models/official/mnasnet/mixnet/mixnet_builder.py',
   mod='mmext/models/backbones/mixnet.py'),
 'espnetv2': dict(name='ESPNetv2', arch=['ESPNetv2', 'EESP', 'SSD'],
   paper=('https://arxiv.org/abs/1811.11431', 'ESPNetv2: A Light-weight, Power Efficient, and General Purpose Convolutional Neural Network'),
   code='https://github.com/sacmehta/EdgeNets/blob/master/model/classification/espnetv2.py',
   mod='mmext/models/backbones/espnetv2.py'),
 'clcnet': dict(name='clcNet', arch=['clcNet', 'CLC block', 'RetinaNet'],
   paper=('https://arxiv.org/abs/1712.06145', 'clcNet: Improving the Efficiency of Convolutional Neural Network using Channel Local Convolutions'),
   code='https://github.com/dqzhang17/clcnet.torch', mod='mmext/models/backbones/clcnet.py'),
 'centernet_stacked': dict(name='CenterNet-Stacked', arch=['ResNet', 'CenterNet', 'Convolutional Pose Machines'],
   paper=('https://arxiv.org/abs/1904.07850', 'Objects as Points'),
   code='https://github.com/xingyizhou/CenterNet', mod='mmext/models/dense_heads/centernet_stacked_head.py'),
 'gaussian_yolov3': dict(name='Gaussian YOLOv3', arch=['DarkNet', 'YOLOv3', 'Gaussian box head'],
   paper=('https://arxiv.org/abs/1904.04620', 'Gaussian YOLOv3: An Accurate and Fast Object Detector Using Localization Uncertainty for Autonomous Driving'),
   code='https://github.com/jwchoi384/Gaussian_YOLOv3/blob/master/src/gaussian_yolo_layer.c',
   mod='mmext/models/dense_heads/gaussian_yolo_head.py'),
 'sniper': dict(name='SNIPER', arch=['ResNet', 'FPN', 'Faster R-CNN', 'RetinaNet', 'Mask R-CNN', 'CenterNet'],
   paper=('https://arxiv.org/abs/1805.09300', 'SNIPER: Efficient Multi-Scale Training'),
   code='https://github.com/mahyarnajibi/SNIPER', mod='mmext/datasets/sniper.py'),
 'distillation': dict(name='Knowledge Distillation', arch=['Knowledge Distillation', 'RetinaNet', 'CenterNet', 'SpineNet', 'MixNet'],
   paper=('https://arxiv.org/abs/1503.02531', 'Distilling the Knowledge in a Neural Network'),
   code=None, mod='mmext/models/detectors/distillation.py'),
 'repnet': dict(name='RepNet', arch=['RepNet', 'WGAN-GP', 'KCS'],
   paper=('https://arxiv.org/abs/1902.09868', 'RepNet: Weakly Supervised Training of an Adversarial Reprojection Network for 3D Human Pose Estimation'),
   code='https://github.com/bastianwandt/RepNet', mod='mmext/pose/repnet.py'),
 'hand': dict(name='Hand Keypoints (Multiview Bootstrapping)', arch=['CPM', 'OpenPose hand network', 'VGG'],
   paper=('https://arxiv.org/abs/1704.07809', 'Hand Keypoint Detection in Single Images using Multiview Bootstrapping'),
   code='https://github.com/CMU-Perceptual-Computing-Lab/openpose', mod='mmext/pose/openpose_hand.py'),
}
# figures measured in this repository (the model cards say by which command)
RESULTS = {
 'configs/spinenet/centernet_spinenet-49s_synthetic.py': [('Object Detection', 'mmext synthetic shapes', {'box AP': 23.0})],
 'configs/mixnet/retinanet_mixnet-s_synthetic.py': [('Object Detection', 'mmext synthetic shapes', {'box AP': 4.7})],
 'configs/hand/cpm_hand_synthetic-96x96.py': [('Hand Pose Estimation', 'mmext synthetic hands', {'PCK@0.2': 0.442, 'AUC': 0.555, 'EPE': 12.9})],
 'configs/repnet/repnet_fc256_b64-15e_synthetic-16j.py': [('3D Human Pose Estimation', 'mmext synthetic poses', {'MPJPE': 115.2, 'P-MPJPE': 84.3})],
}


# config-name fragment -> training data, first match wins (config names follow mmdet's rule)
DATASETS = (('synthetic', 'mmext synthetic'), ('coco-wholebody', 'COCO-WholeBody-Hand'),
            ('onehand10k', 'OneHand10K'), ('panoptic', 'CMU Panoptic Hand'),
            ('h36m', 'Human3.6M'), ('kitti', 'KITTI'), ('coco', 'COCO'),
            ('spinenet_retina', 'COCO'))


def data_name(path):
    name = osp.basename(path)
    return next((data for key, data in DATASETS if key in name), None)


def metadata(path):
    cfg = Config.fromfile(path)
    md = {}
    tc = cfg.get('train_cfg') or {}
    if tc.get('max_epochs'):
        md['Epochs'] = int(tc['max_epochs'])
    elif tc.get('max_iters'):
        md['Iterations'] = int(tc['max_iters'])
    gpus_x_batch = re.search(r'(\d+)xb(\d+)', osp.basename(path))
    batch = cfg.get('train_dataloader', {}).get('batch_size')
    if gpus_x_batch:
        md['Batch Size'] = int(gpus_x_batch.group(1)) * int(gpus_x_batch.group(2))
    elif batch:
        md['Batch Size'] = int(batch)
    if data_name(path):
        md['Training Data'] = data_name(path)
    return md


def main():
    index = []
    for fam, f in FAMILIES.items():
        index.append(write_family(fam, f))
    with open('model-index.yml', 'w') as fh:
        yaml.safe_dump({'Import': index}, fh, sort_keys=False)


def write_family(fam, f):
    coll = {'Name': f['name'], 'Metadata': {'Architecture': f['arch']},
            'Paper': {'URL': f['paper'][0], 'Title': f['paper'][1]},
            'README': f'configs/{fam}/README.md'}
    coll['Code'] = {'URL': f['code'] or f['mod']}
    models = []
    for path in sorted(glob.glob(f'configs/{fam}/*.py')) + f.get('extra', []):
        m = {'Name': osp.splitext(osp.basename(path))[0], 'In Collection': f['name'],
             'Config': path, 'Metadata': metadata(path)}
        if path in RESULTS:
            m['Results'] = [{'Task': t, 'Dataset': d, 'Metrics': mt} for t, d, mt in RESULTS[path]]
        models.append(m)
    text = ('# MMDetection metafile schema (read by model-index / mim). No released weights: mmext\n'
            '# trains no COCO model here; Results only where this repository measured them\n'
            f'# (synthetic data; commands in {coll["README"]}).\n')
    text += yaml.safe_dump({'Collections': [coll], 'Models': models}, sort_keys=False, width=100)
    with open(f'configs/{fam}/metafile.yml', 'w') as fh:
        fh.write(text)
    return f'configs/{fam}/metafile.yml'


if __name__ == '__main__':
    main()
