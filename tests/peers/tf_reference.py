"""TF Model Garden side of the peer tests (runs in .venv-peers, not in mmext's environment).

Builds the reference model with random weights -- every variable, BN moving statistics
included -- writes its checkpoint in Model Garden's layout and the outputs for fixed inputs:

    python tests/peers/tf_reference.py spinenet --arch 49 --sizes 256x256,128x384 --out DIR
    python tests/peers/tf_reference.py retinanet --arch 49 --sizes 256x384 --out DIR
    python tests/peers/tf_reference.py other --arch - --out DIR   # checkpoints of no SpineNet

DIR/ckpt* (the checkpoint) and DIR/ref.npz (``input_<i>`` NCHW images, ``<i>_<level>`` NCHW
backbone levels; for retinanet also ``<i>_scores_<level>`` / ``<i>_boxes_<level>`` NHWC raw
head outputs) are written.
"""
import argparse
import os
import os.path as osp

import numpy as np
import tensorflow as tf
import tf_keras

from official.vision.modeling.backbones import spinenet


def randomize(variables, seed):
    """Random values with sane scales: He-normal kernels, BN gamma ~ U(0.5, 1.5), beta and
    moving mean ~ N(0, 0.1^2), moving variance ~ U(0.5, 1.5), conv biases ~ N(0, 0.1^2)."""
    rng = np.random.default_rng(seed)
    for v in variables:
        shape, name = v.shape.as_list(), v.name
        if 'kernel' in name:
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
        elif 'gamma' in name or 'moving_variance' in name:
            value = rng.uniform(0.5, 1.5, shape)
        else:  # beta, moving_mean, bias
            value = rng.normal(0, 0.1, shape)
        v.assign(value.astype(np.float32))


def build_backbone(arch, size=(256, 256)):
    # a concrete size: with None, Model Garden cannot compare widths and merges no unused block
    scaling = spinenet.SCALING_MAP[arch]
    return spinenet.SpineNet(
        input_specs=tf_keras.layers.InputSpec(shape=[None, size[0], size[1], 3]), min_level=3,
        max_level=7, endpoints_num_filters=scaling['endpoints_num_filters'],
        resample_alpha=scaling['resample_alpha'], block_repeats=scaling['block_repeats'],
        filter_size_scale=scaling['filter_size_scale'], activation='swish')


def build_retinanet(arch):
    """Model Garden's own RetinaNet-SpineNet COCO experiment (91 classes, 9 anchors)."""
    from official.core import exp_factory
    from official.vision.modeling import factory
    config = exp_factory.get_exp_config('retinanet_spinenet_coco')
    model_cfg = config.task.model
    model_cfg.backbone.spinenet.model_id = arch
    model_cfg.norm_activation.use_sync_bn = False
    size = model_cfg.input_size
    model = factory.build_retinanet(
        tf_keras.layers.InputSpec(shape=[None] + list(size)), model_cfg)
    return model


def inputs_for(sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (1, h, w, 3)).astype(np.float32) for h, w in sizes]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('kind', choices=['spinenet', 'retinanet', 'other'])
    parser.add_argument('--arch', required=True)
    parser.add_argument('--sizes', default='256x256')
    parser.add_argument('--out', required=True)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes.split(',')]
    tf.random.set_seed(args.seed)
    ref = {}
    if args.kind == 'other':
        # not a SpineNet: a small Keras CNN, once as `model`, once under the name `backbone`
        net = tf_keras.Sequential([tf_keras.layers.Conv2D(8, 3), tf_keras.layers.Dense(4)])
        net(tf.zeros([1, 8, 8, 3]))
        tf.train.Checkpoint(model=net).write(osp.join(args.out, 'model_ckpt'))
        tf.train.Checkpoint(backbone=net).write(osp.join(args.out, 'backbone_ckpt'))
        print(f'wrote {args.out}')
        return
    if args.kind == 'spinenet':
        model = build_backbone(args.arch)
        randomize(model.weights, args.seed)
        tf.train.Checkpoint(backbone=model).write(osp.join(args.out, 'ckpt'))
        head = None
    else:
        model = build_retinanet(args.arch)
        # the head creates its variables on its first call
        size = model.backbone.input_shape[1:3]
        model.head(model.backbone(tf.zeros([1, size[0], size[1], 3]), training=False))
        assert model.head.weights, 'the RetinaNet head built no variables'
        randomize(model.backbone.weights + model.head.weights, args.seed)
        # the layout of Model Garden's trainer (base_trainer.py): model + its checkpoint_items
        tf.train.Checkpoint(global_step=tf.Variable(0, dtype=tf.int64), model=model,
                            **model.checkpoint_items).write(osp.join(args.out, 'ckpt'))
        head = model.head
    weights = (model if head is None else model.backbone).get_weights()
    for i, x in enumerate(inputs_for(sizes, args.seed + 1)):
        ref[f'input_{i}'] = x.transpose(0, 3, 1, 2)
        # the Keras model has a fixed input size: the same weights in one built per size
        backbone = build_backbone(args.arch, x.shape[1:3])
        backbone.set_weights(weights)
        feats = backbone(x, training=False)
        for level, f in feats.items():
            ref[f'{i}_{level}'] = f.numpy().transpose(0, 3, 1, 2)
        if head is not None:
            scores, boxes = head(feats, training=False)[:2]
            for level in scores:
                ref[f'{i}_scores_{level}'] = scores[level].numpy()
                ref[f'{i}_boxes_{level}'] = boxes[level].numpy()
    np.savez(osp.join(args.out, 'ref.npz'), **ref)
    n = sum(int(np.prod(v.shape)) for v in backbone.trainable_weights)
    print(f'wrote {args.out}: {len(ref)} arrays, {n} trainable backbone parameters')


if __name__ == '__main__':
    main()
