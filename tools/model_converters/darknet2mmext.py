"""Convert darknet YOLOv3 / Gaussian YOLOv3 weights (``.cfg`` + ``.weights``) to mmdet / mmext.

Takes a darknet network definition and its weights -- pjreddie's ``yolov3.cfg`` /
``yolov3.weights`` or the official Gaussian YOLOv3's (jwchoi384/Gaussian_YOLOv3,
``cfg/Gaussian_yolov3_BDD.cfg``, ``cfg/Gaussian_yolov3_KITTI_3cls.cfg`` and their published
``.weights``) -- and writes an mmengine checkpoint for mmdet's Darknet-53 + ``YOLOV3Neck`` with
``YOLOV3Head`` (``[yolo]`` layers) or mmext's ``GaussianYOLOV3Head`` (``[Gaussian_yolo]``)::

    python tools/model_converters/darknet2mmext.py CFG WEIGHTS DST

The ``.weights`` layout (darknet ``parser.c``, ``load_weights_upto``): an int32 header major,
minor, revision, then ``seen`` (int64 when ``major * 10 + minor >= 2``, else int32); then for each
``[convolutional]`` layer in cfg order: with ``batch_normalize=1`` the BN beta (darknet's
"biases"), gamma ("scales"), rolling mean and rolling variance, else the conv bias; then the
kernel as (out, in / groups, k, k) float32. Nothing else carries weights in YOLOv3.

The cfg must be YOLOv3's graph (Darknet-53, then three detection scales); the conv layers map,
in cfg order, onto ``backbone.conv1``, ``backbone.conv_res_block<i>.conv`` / ``.res<j>.conv1/2``,
then per scale ``neck.detect<s>.conv1..5``, ``bbox_head.convs_bridge.<s>``,
``bbox_head.convs_pred.<s>`` and between scales ``neck.conv<s>``. Every layer's type, kernel and
stride is checked against that template, so another network fails with the layer named.

Gaussian YOLOv3 channels: darknet's ``[Gaussian_yolo]`` reads, per anchor, mu_x, sigma_x, mu_y,
sigma_y, mu_w, sigma_w, mu_h, sigma_h, objectness, classes (``gaussian_yolo_layer.c``,
``entry_gaussian_index``); mmext's head puts the four means first (mu_x, mu_y, mu_w, mu_h,
sigma_x, ..., objectness, classes), so the last conv's output channels are permuted.
Darknet's BN divides by ``sqrt(var) + 1e-6`` where PyTorch uses ``sqrt(var + eps)``: outputs differ
by about ``eps / (2 var)`` relative.
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict

import numpy as np

DARKNET53_STAGES = (1, 2, 8, 8, 4)
# darknet per-anchor order -> mmext GaussianYOLOV3Head order (means first)
GAUSSIAN_PERM = [0, 2, 4, 6, 1, 3, 5, 7]


class ConversionError(Exception):
    pass


def parse_cfg(path):
    """Darknet cfg -> list of (section, {key: value}) in file order."""
    if not osp.isfile(path):
        raise ConversionError(f'no such cfg file: {path!r}')
    sections = []
    for raw in open(path):
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith('['):
            sections.append((line.strip('[]').strip(), {}))
        elif '=' in line and sections:
            k, v = line.split('=', 1)
            sections[-1][1][k.strip()] = v.strip()
    if not sections or sections[0][0] not in ('net', 'network'):
        raise ConversionError(f'{path} is not a darknet cfg: it must start with [net]')
    return sections


def yolov3_template():
    """(section, kernel, stride) of YOLOv3's layers after [net], and the mmdet name of each
    conv (None for the other layers)."""
    t = [('convolutional', 3, 1, 'backbone.conv1')]
    for i, n in enumerate(DARKNET53_STAGES):
        t.append(('convolutional', 3, 2, f'backbone.conv_res_block{i + 1}.conv'))
        for j in range(n):
            base = f'backbone.conv_res_block{i + 1}.res{j}'
            t += [('convolutional', 1, 1, f'{base}.conv1'),
                  ('convolutional', 3, 1, f'{base}.conv2'), ('shortcut', None, None, None)]
    for s in range(3):
        if s:
            t += [('route', None, None, None), ('convolutional', 1, 1, f'neck.conv{s}'),
                  ('upsample', None, None, None), ('route', None, None, None)]
        t += [('convolutional', k, 1, f'neck.detect{s + 1}.conv{c + 1}')
              for c, k in enumerate((1, 3, 1, 3, 1))]
        t += [('convolutional', 3, 1, f'bbox_head.convs_bridge.{s}'),
              ('convolutional', 1, 1, f'bbox_head.convs_pred.{s}'), ('yolo', None, None, None)]
    return t


def plan(sections):
    """Check the cfg against YOLOv3 and list each conv: name, in/out channels, kernel, BN."""
    net, layers = sections[0][1], sections[1:]
    template = yolov3_template()
    if len(layers) != len(template):
        raise ConversionError(f'the cfg has {len(layers)} layers, YOLOv3 has {len(template)}')
    channels, out_c, convs, head = [], int(net.get('channels', 3)), [], None
    for i, ((sec, opts), (want, k, s, name)) in enumerate(zip(layers, template)):
        kind = 'yolo' if sec in ('yolo', 'Gaussian_yolo') else sec
        if kind != want:
            raise ConversionError(f'layer {i} is [{sec}], YOLOv3 has [{want}] there')
        if kind == 'convolutional':
            size, stride = int(opts.get('size', 1)), int(opts.get('stride', 1))
            if (size, stride) != (k, s):
                raise ConversionError(f'layer {i} ({name}): size={size} stride={stride}, '
                                      f'YOLOv3 has size={k} stride={s}')
            groups = int(opts.get('groups', 1))
            convs.append(dict(name=name, c_in=out_c, c_out=int(opts['filters']), k=size,
                              groups=groups, bn=opts.get('batch_normalize', '0') == '1'))
            out_c = int(opts['filters'])
        elif kind == 'route':
            refs = [int(v) for v in opts['layers'].split(',')]
            out_c = sum(channels[r if r >= 0 else i + r] for r in refs)
        elif kind == 'yolo':
            kind_now = 'gaussian' if sec == 'Gaussian_yolo' else 'yolo'
            if head not in (None, kind_now):
                raise ConversionError('the cfg mixes [yolo] and [Gaussian_yolo] layers')
            head = kind_now
            classes = int(opts['classes'])
            n_anchors = len(opts.get('mask', '0,1,2').split(','))
            attrib = classes + (9 if head == 'gaussian' else 5)
            if convs[-1]['c_out'] != n_anchors * attrib:
                raise ConversionError(f'layer {i}: [{sec}] with {classes} classes and '
                                      f'{n_anchors} anchors needs {n_anchors * attrib} filters '
                                      f'before it, the cfg has {convs[-1]["c_out"]}')
        channels.append(out_c)
    return convs, dict(head=head, num_classes=classes, num_anchors=n_anchors)


def read_weights(path, convs):
    if not osp.isfile(path):
        raise ConversionError(f'no such weights file: {path!r}')
    with open(path, 'rb') as f:
        header = np.fromfile(f, dtype=np.int32, count=3)
        if header.size < 3:
            raise ConversionError(f'{path}: {osp.getsize(path)} bytes, shorter than the header')
        major, minor, _ = (int(v) for v in header)
        seen_dtype = np.int64 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 \
            else np.int32
        np.fromfile(f, dtype=seen_dtype, count=1)
        data = np.fromfile(f, dtype=np.float32)
    need = sum((4 if c['bn'] else 1) * c['c_out'] + c['c_out'] * c['c_in'] // c['groups'] *
               c['k'] * c['k'] for c in convs)
    if data.size != need:
        what = 'too short' if data.size < need else 'too long'
        raise ConversionError(f'{path} is {what} for its cfg: the cfg needs {need} float32 '
                              f'values after the header, the file has {data.size} (another '
                              f'network or a truncated download?)')
    return data


def convert_arrays(convs, data, info):
    out, pos = OrderedDict(), 0

    def take(n):
        nonlocal pos
        pos += n
        return data[pos - n:pos]

    for c in convs:
        n = c['c_out']
        if c['bn']:
            beta, gamma, mean, var = take(n), take(n), take(n), take(n)
        else:
            bias = take(n)
        w = take(n * c['c_in'] // c['groups'] * c['k'] ** 2).reshape(
            n, c['c_in'] // c['groups'], c['k'], c['k'])
        if c['bn']:
            out[f'{c["name"]}.conv.weight'] = w
            out[f'{c["name"]}.bn.weight'] = gamma
            out[f'{c["name"]}.bn.bias'] = beta
            out[f'{c["name"]}.bn.running_mean'] = mean
            out[f'{c["name"]}.bn.running_var'] = var
            out[f'{c["name"]}.bn.num_batches_tracked'] = np.array(0, dtype=np.int64)
        else:
            if info['head'] == 'gaussian' and '.convs_pred.' in c['name']:
                idx = gaussian_channel_order(info['num_anchors'], info['num_classes'])
                w, bias = w[idx], bias[idx]
            out[f'{c["name"]}.weight'] = w
            out[f'{c["name"]}.bias'] = bias
    return out


def gaussian_channel_order(num_anchors, num_classes):
    """For each mmext output channel of a Gaussian YOLOv3 prediction conv, its darknet one."""
    attrib = 9 + num_classes
    per_anchor = GAUSSIAN_PERM + list(range(8, attrib))
    return [a * attrib + j for a in range(num_anchors) for j in per_anchor]


def convert(cfg, weights, dst):
    convs, info = plan(parse_cfg(cfg))
    state = convert_arrays(convs, read_weights(weights, convs), info)
    import torch
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save({'meta': {'converted_from': 'darknet', 'cfg': osp.abspath(cfg), **info},
                'state_dict': OrderedDict((k, torch.from_numpy(np.array(v)))
                                          for k, v in state.items())}, tmp)
    os.replace(tmp, dst)
    return dict(info, tensors=len(state))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('cfg', help='darknet .cfg')
    parser.add_argument('weights', help='darknet .weights')
    parser.add_argument('dst', help='output mmengine checkpoint')
    args = parser.parse_args(argv)
    try:
        info = convert(args.cfg, args.weights, args.dst)
    except ConversionError as e:
        print(f'darknet2mmext: error: {e}', file=sys.stderr)
        return 1
    head = 'GaussianYOLOV3Head' if info['head'] == 'gaussian' else 'YOLOV3Head'
    print(f'Darknet-53 + {head} ({info["num_classes"]} classes): {info["tensors"]} tensors '
          f'-> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
