"""Convert TF Model Garden SpineNet checkpoints to mmext (``SpineNet(tf_compat='model_garden')``).

Reads TF2 object-based checkpoints as TF Model Garden writes them
(``official/vision/modeling/backbones/spinenet.py``):

* a bare backbone, ``tf.train.Checkpoint(backbone=spinenet)`` -> ``backbone.*`` keys (for
  ``init_cfg=dict(type='Pretrained', prefix='backbone.', ...)`` or ``load_from``);
* a whole RetinaNet-SpineNet as Model Garden's trainer saves it (``backbone``/``head``
  checkpoint items; decoder ``identity``) -> ``backbone.*`` + ``bbox_head.*`` for mmext's
  :class:`RetinaSepBNActHead` (shared convs across levels, BN per level), loadable by
  ``tools/test.py configs/spinenet/retinanet_spinenet-<arch>_tf-model-garden_coco.py DST``.

Usage (in an environment with torch, ``tensorflow-cpu`` and ``tf-models-official``; mmext and
mmcv are not needed)::

    python tools/model_converters/spinenet_tf2mmext.py SRC DST --arch 49

``SRC`` is the checkpoint prefix (``.../ckpt-600000``, the path without ``.index``) or a
directory (its latest checkpoint).

How variables are matched (no position guesses): the converter rebuilds Model Garden's Keras
SpineNet for ``--arch`` and restores ``SRC`` into it through TF's object graph, which checks every
variable's shape (a checkpoint of another variant fails with the expected and found shapes).
Model Garden gives its top-level layers Keras' default names, numbered per class in creation
order (``conv2d``, ``conv2d_1``, ...; ``batch_normalization_<k>``; ``bottleneck_block_<k>``,
``residual_block_<k>``), and it creates them in the order mmext builds its modules: the stem
conv; per block of the permutation, resample of parent 0 (1x1 reduce, [3x3/2], 1x1 expand), of
parent 1, then the block group; the endpoint convs of levels 3-7. So the ``k``-th Conv2D / BN
outside the residual blocks is mmext's ``k``-th ConvModule outside them, and the ``k``-th
bottleneck / residual block layer is mmext's ``k``-th block of that kind; inside a block
``_conv1..3``/``_norm1..3`` are ``body.0..2`` and ``_shortcut``/``_norm0`` is ``shortcut``.
Model Garden's extra level-2 output block (its 16th spec) feeds no endpoint and is not part of
the Keras model, as mmext does not build it. Every mapped tensor's shape is checked.

The head is read by its variable names (``head/_cls_convs/<i>``, ``head/_cls_norms/<level>/<i>``,
``head/_classifier``, the same for ``box``). Conversions: kernels HWIO -> OIHW; BN
gamma/beta/moving mean/variance -> weight/bias/running_mean/running_var; the head convs' biases
(Model Garden's convs before BN keep one, mmdet's do not) are folded into each level's BN
running mean (exact in eval mode); anchors reordered from Model Garden's (scale-major, aspect =
w/h) to mmdet's (ratio-major, ratio = h/w) and box deltas from (dy, dx, dh, dw) to
(dx, dy, dw, dh); with 91 classes (Model Garden's COCO: index = COCO category id, 0 =
background) the 80 COCO categories are kept in mmdet's order (``--keep-all-classes`` keeps all).
"""
import argparse
import glob
import os
import os.path as osp
import re
import sys
from collections import OrderedDict

import numpy as np

ARCHS = ('49S', '49', '96', '143', '190')
MIN_LEVEL, MAX_LEVEL = 3, 7
# COCO category ids in mmdet's class order (CocoDataset sorts the 80 ids)
COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
            25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49,
            50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74,
            75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]
# Model Garden's RetinaNet anchors (official/vision/configs/retinanet.py: num_scales 3, aspect ratios w/h)
MG_ASPECT_RATIOS = (0.5, 1.0, 2.0)


class ConversionError(Exception):
    """A clear, user-facing reason the checkpoint cannot be converted."""


def _tf():
    try:
        import tensorflow as tf  # noqa: F401
        import tf_keras  # noqa: F401
        from official.vision.modeling.backbones import spinenet  # noqa: F401
    except ImportError as e:
        raise ConversionError(
            f'this converter needs TensorFlow and TF Model Garden ({e}); install them beside '
            f'torch: pip install tensorflow-cpu tf-models-official') from e
    return tf, tf_keras, spinenet


def resolve_checkpoint(src):
    """The checkpoint prefix for ``src`` (a prefix, a ``.index`` file or a directory)."""
    if src.endswith('.index'):
        src = src[:-len('.index')]
    if osp.isdir(src):
        # TF's `checkpoint` state file names the latest one; else the newest .index
        state = osp.join(src, 'checkpoint')
        latest = None
        if osp.exists(state):
            m = re.search(r'^model_checkpoint_path:\s*"(.+)"', open(state).read(), re.M)
            latest = m and osp.join(src, m.group(1))
        if not latest:
            indexes = sorted(glob.glob(osp.join(src, '*.index')), key=osp.getmtime)
            latest = indexes[-1][:-len('.index')] if indexes else None
        if latest is None:
            raise ConversionError(f'{src} is a directory without a TF checkpoint in it')
        src = latest
    if not osp.exists(src + '.index'):
        raise ConversionError(f'no TF checkpoint at {src!r} (expected {src}.index and its '
                              f'data files)')
    return src


def list_checkpoint(prefix):
    tf, _, _ = _tf()
    try:
        return dict(tf.train.list_variables(prefix))
    except Exception as e:  # corrupt or not a TF checkpoint
        raise ConversionError(f'cannot read TF checkpoint {prefix!r}: {e}') from e


def build_keras_spinenet(arch):
    """Model Garden's Keras SpineNet-``arch`` in a fresh Keras graph (default layer names)."""
    tf, tf_keras, spinenet = _tf()
    tf_keras.backend.clear_session()
    scaling = spinenet.SCALING_MAP[arch]
    return spinenet.SpineNet(
        # a concrete size: with None Model Garden cannot compare widths and merges no unused
        # block into the output blocks (another graph); 256 builds the same variables as any
        # multiple of 128
        input_specs=tf_keras.layers.InputSpec(shape=[None, 256, 256, 3]),
        min_level=MIN_LEVEL, max_level=MAX_LEVEL,
        endpoints_num_filters=scaling['endpoints_num_filters'],
        resample_alpha=scaling['resample_alpha'], block_repeats=scaling['block_repeats'],
        filter_size_scale=scaling['filter_size_scale'])


def mmext_layout(arch):
    """mmext's names, in build order, of the ConvModules outside residual blocks and of the
    residual blocks (kind, name) -- the same walk as ``SpineNet._plan`` for levels 3-7."""
    _, _, spinenet = _tf()
    repeats = spinenet.SCALING_MAP[arch]['block_repeats']
    specs = list(spinenet.SPINENET_BLOCK_SPECS)
    # Model Garden's trailing level-2 output block feeds no endpoint; mmext has no such spec
    while specs and specs[-1][3] and specs[-1][0] < MIN_LEVEL:
        specs.pop()
    convs, blocks = ['stem.0'], []
    levels = [2, 2]
    for g in range(2):
        blocks += [('bottleneck', f'stem_blocks.{g}.{r}') for r in range(repeats)]
    for i, (level, kind, inputs, _) in enumerate(specs):
        for j, parent in enumerate(inputs):
            base = f'resamples.{i}.{j}'
            convs.append(f'{base}.reduce')
            if levels[parent] < level:
                convs.append(f'{base}.down.0')
            convs.append(f'{base}.expand')
        blocks += [(kind, f'blocks.{i}.{r}') for r in range(repeats)]
        levels.append(level)
    convs += [f'endpoints.{lv}' for lv in range(MIN_LEVEL, MAX_LEVEL + 1)]
    return convs, blocks


def _order(layer):
    m = re.fullmatch(r'[a-z_0-9]*?(?:_(\d+))?', layer.name)
    return int(m.group(1) or 0) if m else None


def keras_layout(model):
    """Top-level layers of a Keras SpineNet by kind, each in creation order."""
    _, tf_keras, _ = _tf()
    from official.vision.modeling.layers import nn_blocks
    kinds = {'conv': (tf_keras.layers.Conv2D, 'conv2d'),
             'bn': (tf_keras.layers.BatchNormalization, 'batch_normalization'),
             'bottleneck': (nn_blocks.BottleneckBlock, 'bottleneck_block'),
             'residual': (nn_blocks.ResidualBlock, 'residual_block')}
    out = {k: [] for k in kinds}
    for layer in model.layers:
        for kind, (cls, base) in kinds.items():
            if isinstance(layer, cls):
                m = re.fullmatch(re.escape(base) + r'(?:_(\d+))?', layer.name)
                if m is None:
                    raise ConversionError(f'unexpected layer name {layer.name!r}: the mapping '
                                          f'relies on Keras default names')
                out[kind].append((int(m.group(1) or 0), layer))
    return {k: [layer for _, layer in sorted(v, key=lambda t: t[0])] for k, v in out.items()}


def _conv(kernel):
    return np.ascontiguousarray(np.transpose(np.asarray(kernel), (3, 2, 0, 1)))


def _bn(layer, prefix, out, mean_shift=None):
    gamma, beta, mean, var = [np.asarray(w) for w in
                              (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)]
    if mean_shift is not None:
        mean = mean - mean_shift
    out[f'{prefix}.weight'] = gamma
    out[f'{prefix}.bias'] = beta
    out[f'{prefix}.running_mean'] = mean
    out[f'{prefix}.running_var'] = var
    out[f'{prefix}.num_batches_tracked'] = np.array(0, dtype=np.int64)


def convert_backbone(model, arch):
    """mmext ``SpineNet`` state dict (numpy) from a restored Keras SpineNet."""
    convs, blocks = mmext_layout(arch)
    k = keras_layout(model)
    if len(k['conv']) != len(convs) or len(k['bn']) != len(convs):
        raise ConversionError(f'SpineNet-{arch}: Model Garden built {len(k["conv"])} convs / '
                              f'{len(k["bn"])} BNs outside blocks, mmext expects {len(convs)}')
    out = OrderedDict()
    for name, conv, bn in zip(convs, k['conv'], k['bn']):
        out[f'{name}.conv.weight'] = _conv(conv.kernel)
        _bn(bn, f'{name}.bn', out)
    for kind in ('bottleneck', 'residual'):
        ours = [n for kd, n in blocks if kd == kind]
        theirs = k[kind]
        if len(ours) != len(theirs):
            raise ConversionError(f'SpineNet-{arch}: {len(theirs)} Model Garden {kind} blocks, '
                                  f'mmext expects {len(ours)}')
        n_body = 3 if kind == 'bottleneck' else 2
        for name, block in zip(ours, theirs):
            for i in range(n_body):
                out[f'{name}.body.{i}.conv.weight'] = _conv(getattr(block, f'_conv{i + 1}').kernel)
                _bn(getattr(block, f'_norm{i + 1}'), f'{name}.body.{i}.bn', out)
            if block._use_projection:
                out[f'{name}.shortcut.conv.weight'] = _conv(block._shortcut.kernel)
                _bn(block._norm0, f'{name}.shortcut.bn', out)
    return out


def restore_backbone(prefix, arch, variables):
    tf, _, _ = _tf()
    model = build_keras_spinenet(arch)
    try:
        status = tf.train.Checkpoint(backbone=model).read(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        msg = ' '.join(str(e).split())
        m = re.search(r'incompatible tensor with shape (\S+) when attempting to restore '
                      r'variable with shape (\S+) and name (\S+?)(?::0)?\.?\s', msg + ' ')
        what = (f'variable {m.group(3)} expects shape {m.group(2)}, found {m.group(1)}' if m
                else msg[:300])
        raise ConversionError(
            f'{prefix} is not a Model Garden SpineNet-{arch} backbone: {what} '
            f'({_variant_hint(variables)})') from e
    # a larger variant's checkpoint would leave backbone variables unread
    n_ckpt = sum(1 for k in variables if k.startswith('backbone/'))
    n_model = len(model.weights)
    if n_ckpt != n_model:
        raise ConversionError(f'{prefix}: the checkpoint holds {n_ckpt} backbone variables, '
                              f'SpineNet-{arch} has {n_model}; {_variant_hint(variables)}')
    return model


def _variant_hint(variables):
    """Which variant the checkpoint's stem looks like (filters of the first stem block)."""
    widths = {41: '49S', 64: '49, 96 or 143', 83: '190'}
    for key, shape in variables.items():
        if key.startswith('backbone/') and key.endswith('_conv1/kernel/.ATTRIBUTES/VARIABLE_VALUE') \
                and list(shape[:3]) == [1, 1, 64]:
            return (f'its first stem block has {shape[3]} filters, as SpineNet-'
                    f'{widths.get(shape[3], "?")}')
    return 'it has no SpineNet stem block'


def convert_head(reader, variables, num_levels, keep_all_classes=False):
    """mmdet ``RetinaSepBNActHead`` state dict (numpy) from Model Garden's RetinaNetHead."""
    def get(name):
        key = f'head/{name}/.ATTRIBUTES/VARIABLE_VALUE'
        if key not in variables:
            raise ConversionError(f'head variable {key!r} missing from the checkpoint')
        return reader.get_tensor(key)

    n_convs = len({m.group(1) for k in variables
                   for m in [re.match(r'head/_cls_convs/(\d+)/kernel/', k)] if m})
    levels = len({m.group(1) for k in variables
                  for m in [re.match(r'head/_cls_norms/(\d+)/', k)] if m})
    if levels != num_levels:
        raise ConversionError(f'the head has BNs for {levels} levels, SpineNet gives '
                              f'{num_levels}')
    out = OrderedDict()
    for tower, ours in (('cls', 'cls_convs'), ('box', 'reg_convs')):
        for i in range(n_convs):
            kernel, bias = get(f'_{tower}_convs/{i}/kernel'), get(f'_{tower}_convs/{i}/bias')
            for lv in range(num_levels):
                out[f'{ours}.{lv}.{i}.conv.weight'] = _conv(kernel)
                prefix = f'{ours}.{lv}.{i}.bn'
                out[f'{prefix}.weight'] = get(f'_{tower}_norms/{lv}/{i}/gamma')
                out[f'{prefix}.bias'] = get(f'_{tower}_norms/{lv}/{i}/beta')
                # conv bias before BN == BN mean shifted by the bias
                out[f'{prefix}.running_mean'] = get(f'_{tower}_norms/{lv}/{i}/moving_mean') - bias
                out[f'{prefix}.running_var'] = get(f'_{tower}_norms/{lv}/{i}/moving_variance')
                out[f'{prefix}.num_batches_tracked'] = np.array(0, dtype=np.int64)
    box_k, box_b = get('_box_regressor/kernel'), get('_box_regressor/bias')
    cls_k, cls_b = get('_classifier/kernel'), get('_classifier/bias')
    num_anchors = box_k.shape[-1] // 4
    num_classes = cls_k.shape[-1] // num_anchors
    anchor_perm = mg_to_mmdet_anchor_order(num_anchors)
    classes = list(range(num_classes))
    if num_classes == 91 and not keep_all_classes:
        classes = COCO_IDS
    cls_idx = [a * num_classes + c for a in anchor_perm for c in classes]
    box_idx = [a * 4 + d for a in anchor_perm for d in (1, 0, 3, 2)]  # dy,dx,dh,dw -> dx,dy,dw,dh
    out['retina_cls.weight'] = _conv(cls_k[..., cls_idx])
    out['retina_cls.bias'] = cls_b[cls_idx]
    out['retina_reg.weight'] = _conv(box_k[..., box_idx])
    out['retina_reg.bias'] = box_b[box_idx]
    return out, dict(num_classes=len(classes), num_anchors=num_anchors, stacked_convs=n_convs,
                     feat_channels=int(cls_k.shape[2]))


def mg_to_mmdet_anchor_order(num_anchors, aspect_ratios=MG_ASPECT_RATIOS):
    """For each mmdet anchor (ratio-major, ratio h/w ascending), its Model Garden index
    (scale-major, aspect w/h as listed)."""
    n_r = len(aspect_ratios)
    if num_anchors % n_r:
        raise ConversionError(f'{num_anchors} anchors per location is not a multiple of the '
                              f'{n_r} aspect ratios {aspect_ratios}')
    n_s = num_anchors // n_r
    # mmdet ratio h/w = 1 / (Model Garden's w/h); mmdet lists its ratios ascending
    mg_by_hw = sorted(range(n_r), key=lambda r: 1.0 / aspect_ratios[r])
    return [s * n_r + mg_by_hw[r] for r in range(n_r) for s in range(n_s)]


def convert(src, dst, arch, keep_all_classes=False):
    """Convert ``src`` to an mmengine checkpoint at ``dst``; returns a summary dict."""
    if arch not in ARCHS:
        raise ConversionError(f'--arch {arch!r} is not one of {ARCHS}')
    prefix = resolve_checkpoint(src)
    tf, _, _ = _tf()
    variables = list_checkpoint(prefix)
    if not any(k.startswith('backbone/') for k in variables):
        tops = sorted({k.split('/')[0] for k in variables if k != '_CHECKPOINTABLE_OBJECT_GRAPH'})
        raise ConversionError(f'{prefix} holds no SpineNet: no "backbone" object in the '
                              f'checkpoint (top-level objects: {tops})')
    model = restore_backbone(prefix, arch, variables)
    state = OrderedDict(('backbone.' + k, v) for k, v in convert_backbone(model, arch).items())
    info = dict(arch=arch, source=osp.abspath(prefix), head=None)
    if any(k.startswith('head/') for k in variables):
        head, info['head'] = convert_head(tf.train.load_checkpoint(prefix), variables,
                                          MAX_LEVEL - MIN_LEVEL + 1, keep_all_classes)
        state.update(('bbox_head.' + k, v) for k, v in head.items())
    import torch
    ckpt = {'meta': {'converted_from': 'tf-model-garden', **info},
            'state_dict': OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in state.items())}
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save(ckpt, tmp)
    os.replace(tmp, dst)  # nothing half-written at dst
    return dict(info, tensors=len(state))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='TF checkpoint prefix, .index file or directory')
    parser.add_argument('dst', help='output mmengine checkpoint (.pth)')
    parser.add_argument('--arch', required=True, type=str.upper, choices=ARCHS,
                        help='SpineNet variant (case-insensitive)')
    parser.add_argument('--keep-all-classes', action='store_true',
                        help='keep all classifier classes (default: a 91-class COCO head '
                             'becomes mmdet\'s 80 COCO classes)')
    args = parser.parse_args(argv)
    try:
        info = convert(args.src, args.dst, args.arch, args.keep_all_classes)
    except ConversionError as e:
        print(f'spinenet_tf2mmext: error: {e}', file=sys.stderr)
        return 1
    what = 'backbone + RetinaNet head' if info['head'] else 'backbone'
    print(f'SpineNet-{info["arch"]} {what}: {info["tensors"]} tensors -> {args.dst}')
    if info['head']:
        print(f'head: {info["head"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
