"""Convert the official ESPNetv2 ImageNet weights (sacmehta/EdgeNets) to mmext ``ESPNetv2``.

Takes the ``.pth`` state dicts of EdgeNets' ``EESPNet`` (``model/classification/espnetv2.py``;
published in the EdgeNets repository under ``model/classification/model_zoo/espnetv2/``,
``espnetv2_s_<s>_imagenet_224x224.pth`` for s = 0.5, 1.0, 1.25, 1.5, 2.0) and writes an mmengine
checkpoint with ``backbone.*`` keys for ``ESPNetv2(widen_factor=s, num_classes=1000)``
(``backbone.head.*`` is the ImageNet head; detection configs load the rest with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``)::

    python tools/model_converters/espnetv2_official2mmext.py SRC DST [--widen-factor 2.0]
        [--detection]

``--detection`` writes the EdgeNets detection backbone instead (``ESPNetv2(widen_factor=s)``,
EdgeNets ``model/detection/espnetv2.py``): the ImageNet classifier is dropped and
``level5_0.inp_reinf`` is kept, since that detector feeds the image to level 5 and loads these
ImageNet weights, shortcut included, into its base network.

Renaming (official -> mmext): ``level1`` -> ``level1``; ``level{l}_0`` (DownSampler) ->
``levels.{l-2}.0`` with ``inp_reinf`` -> ``image_shortcut``; ``level{l}.{i}`` (EESP) ->
``levels.{l-2}.{i+1}``; ``level5.3`` (depth-wise 3x3 CBR) -> ``levels.3.4``; ``level5.4`` (grouped
1x1 CBR) -> ``levels.3.5``; ``classifier`` -> ``head.3``. Inside units: ``proj_1x1`` -> ``reduce``,
``spp_dw.{k}.conv`` -> ``branches.{k}``, ``br_after_cat.bn/act`` -> ``cat_norm``/``cat_act``,
``conv_1x1_exp`` -> ``expand``, ``module_act`` -> ``act``; CBR's ``act`` -> ConvModule's
``activate``.

Dropped, because the official forward never uses them (reported on every run):
``level5_0.inp_reinf.*`` (the ImageNet model builds the level-5 DownSampler with an image
shortcut but calls it without the image; kept with ``--detection``), each DownSampler's
``eesp.module_act`` (a strided EESP returns before its activation) and, with ``--detection``,
``classifier.*``. A DataParallel ``module.`` prefix is removed.
"""
import argparse
import os
import os.path as osp
import re
import sys
from collections import OrderedDict

# official level -> mmext levels index; official units per level after the DownSampler
_UNIT = {'proj_1x1': 'reduce', 'conv_1x1_exp': 'expand', 'br_after_cat.bn': 'cat_norm',
         'br_after_cat.act': 'cat_act', 'module_act': 'act'}
_CBR = {'conv': 'conv', 'bn': 'bn', 'act': 'activate'}


class ConversionError(Exception):
    pass


def _cbr(rest):
    part, tail = rest.split('.', 1)
    return f'{_CBR[part]}.{tail}'


def _unit(rest):
    """Inside an official EESP unit -> inside mmext's EESP."""
    m = re.match(r'spp_dw\.(\d+)\.conv\.(.+)$', rest)
    if m:
        return f'branches.{m.group(1)}.{m.group(2)}'
    for theirs, ours in sorted(_UNIT.items(), key=lambda t: -len(t[0])):
        if rest.startswith(theirs + '.'):
            tail = rest[len(theirs) + 1:]
            if theirs in ('proj_1x1', 'conv_1x1_exp'):
                tail = _cbr(tail)
            return f'{ours}.{tail}'
    raise KeyError(rest)


def rename(key, detection=False):
    """mmext name for an official key, or (None, reason) for the keys mmext has no use for
    (``detection``: the EdgeNets detection backbone's keys, see the module docstring)."""
    if not detection and re.match(r'level5_0\.inp_reinf\.', key):
        return None, 'level-5 DownSampler image shortcut: built but never called officially'
    if detection and re.match(r'classifier\.', key):
        return None, 'ImageNet classifier: not part of the detection backbone'
    if re.match(r'level\d_0\.eesp\.module_act\.', key):
        return None, 'strided EESP activation: the official unit returns before it'
    m = re.match(r'level1\.(.+)$', key)
    if m:
        return 'level1.' + _cbr(m.group(1)), None
    m = re.match(r'level(\d)_0\.(.+)$', key)
    if m:
        lv, rest = int(m.group(1)), m.group(2)
        base = f'levels.{lv - 2}.0.'
        if rest.startswith('eesp.'):
            return base + 'eesp.' + _unit(rest[len('eesp.'):]), None
        m2 = re.match(r'inp_reinf\.(\d)\.(.+)$', rest)
        if m2:
            return base + f'image_shortcut.{m2.group(1)}.' + _cbr(m2.group(2)), None
        if rest.startswith('act.'):
            return base + rest, None
        raise KeyError(key)
    m = re.match(r'level(\d)\.(\d+)\.(.+)$', key)
    if m:
        lv, i, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        n_eesp = {3: 3, 4: 7, 5: 3}[lv]
        if lv == 5 and i == n_eesp:  # depth-wise 3x3 CBR closing level 5
            return 'levels.3.4.' + _cbr(rest), None
        if lv == 5 and i == n_eesp + 1:  # grouped 1x1 CBR to the final width
            return 'levels.3.5.' + _cbr(rest), None
        return f'levels.{lv - 2}.{i + 1}.' + _unit(rest), None
    m = re.match(r'classifier\.(.+)$', key)
    if m:
        return 'head.3.' + m.group(1), None
    raise KeyError(key)


def infer_widen_factor(state):
    from mmext.models.backbones.espnetv2 import ESPNETV2_WIDTHS
    key = 'level2_0.act.weight'
    if key not in state:
        raise ConversionError(f'not an EdgeNets ESPNetv2 state dict: no {key!r} '
                              f'(found keys like {list(state)[:3]})')
    c = state[key].shape[0]
    found = [s for s, w in ESPNETV2_WIDTHS.items() if w[1] == c]
    if not found:
        raise ConversionError(f'level-2 width {c} matches no ESPNetv2 width scale '
                              f'{ {s: w[1] for s, w in ESPNETV2_WIDTHS.items()} }')
    return found[0]


def convert(src, dst, widen_factor=None, num_classes=None, detection=False):
    import torch
    if not osp.isfile(src):
        raise ConversionError(f'no such file: {src!r}')
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ConversionError(f'{src} holds no state dict')
    state = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                        for k, v in state.items())
    found = infer_widen_factor(state)
    if widen_factor is not None and float(widen_factor) != found:
        from mmext.models.backbones.espnetv2 import ESPNETV2_WIDTHS
        raise ConversionError(
            f'--widen-factor {widen_factor} expects level2_0.act.weight of shape '
            f'({ESPNETV2_WIDTHS[float(widen_factor)][1]},), found '
            f'{tuple(state["level2_0.act.weight"].shape)} (width scale {found})')
    if detection:
        num_classes = 0
    elif num_classes is None:
        num_classes = state['classifier.weight'].shape[0] if 'classifier.weight' in state else 0
    from mmext.models.backbones.espnetv2 import ESPNetv2
    expected = ESPNetv2(widen_factor=found, num_classes=num_classes,
                        level5_image_shortcut=detection).state_dict()
    out, dropped = OrderedDict(), []
    for key, value in state.items():
        try:
            name, reason = rename(key, detection)
        except KeyError:
            raise ConversionError(f'unexpected key {key!r} for an EdgeNets ESPNetv2') from None
        if name is None:
            dropped.append((key, reason))
            continue
        if name not in expected:
            raise ConversionError(f'{key!r} -> {name!r}, which ESPNetv2(s={found}) lacks')
        if tuple(expected[name].shape) != tuple(value.shape):
            raise ConversionError(f'{key!r}: ESPNetv2(s={found}) expects shape '
                                  f'{tuple(expected[name].shape)} for {name!r}, found '
                                  f'{tuple(value.shape)}')
        out[name] = value
    # BN counters are not saved by older torch; mmext's strict load wants them
    for name, value in expected.items():
        if name.endswith('num_batches_tracked') and name not in out:
            out[name] = torch.zeros_like(value)
    missing = [k for k in expected if k not in out]
    if missing:
        raise ConversionError(f'the state dict lacks {len(missing)} tensors of '
                              f'ESPNetv2(s={found}), e.g. {missing[:5]}')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save({'meta': {'converted_from': 'sacmehta/EdgeNets espnetv2', 'widen_factor': found,
                         'num_classes': num_classes, 'source': osp.abspath(src)},
                'state_dict': OrderedDict(('backbone.' + k, v) for k, v in out.items())}, tmp)
    os.replace(tmp, dst)
    return dict(widen_factor=found, num_classes=num_classes, tensors=len(out), dropped=dropped)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='EdgeNets ESPNetv2 .pth state dict')
    parser.add_argument('dst', help='output mmengine checkpoint')
    parser.add_argument('--widen-factor', type=float, default=None,
                        help='expected width scale s (default: read from the weights)')
    parser.add_argument('--detection', action='store_true',
                        help='write the EdgeNets detection backbone (no classifier, level-5 '
                             'image shortcut kept)')
    args = parser.parse_args(argv)
    try:
        info = convert(args.src, args.dst, args.widen_factor, detection=args.detection)
    except ConversionError as e:
        print(f'espnetv2_official2mmext: error: {e}', file=sys.stderr)
        return 1
    print(f'ESPNetv2 s={info["widen_factor"]} ({info["num_classes"]} classes): '
          f'{info["tensors"]} tensors -> {args.dst}')
    for key, reason in info['dropped']:
        print(f'dropped {key}: {reason}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
