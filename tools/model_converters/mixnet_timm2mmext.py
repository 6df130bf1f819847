"""Convert timm MixNet weights (``mixnet_s/m/l``, ``tf_mixnet_s/m/l``) to mmext ``MixNet``.

timm publishes ImageNet weights for both families (Hugging Face hub ``timm/mixnet_s.ft_in1k``,
``timm/tf_mixnet_s.in1k`` ...; ``tf_`` = the official TensorFlow checkpoints of
tensorflow/tpu ``models/official/mnasnet/mixnet``). Their keys are the same but their models are
not: ``mixnet_*`` pad as PyTorch and were trained with BN eps 1e-5; ``tf_mixnet_*`` pad as TF
'SAME' and use eps 1e-3. So the timm model name is required (read from a file name such as
``tf_mixnet_s-89d3354b.pth`` when not given), and the backbone arguments to use are printed::

    python tools/model_converters/mixnet_timm2mmext.py SRC DST [--model-name tf_mixnet_s]

``SRC``: a timm state dict (``.pth`` / ``.bin`` via torch, ``.safetensors`` via safetensors).
``DST``: an mmengine checkpoint with ``backbone.*`` keys (``backbone.fc`` = the ImageNet
classifier, for ``MixNet(num_classes=1000)``; detection configs load the rest with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``).
"""
import argparse
import os
import os.path as osp
import re
import sys
from collections import OrderedDict


class ConversionError(Exception):
    pass


def guess_model_name(path):
    m = re.search(r'(tf_)?mixnet_[sml](?![a-z])', osp.basename(path))
    return m.group(0) if m else None


def load_state(path):
    import torch
    if not osp.isfile(path):
        raise ConversionError(f'no such file: {path!r}')
    if path.endswith('.safetensors'):
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise ConversionError('reading .safetensors needs the safetensors package') from e
        return load_file(path)
    state = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    if not isinstance(state, dict):
        raise ConversionError(f'{path} holds no state dict')
    return state


def convert(src, dst, model_name=None):
    import torch
    from mmext.models.backbones.mixnet import (MixNet, convert_timm_mixnet,
                                               timm_mixnet_backbone_args)
    model_name = model_name or guess_model_name(src)
    if model_name is None:
        raise ConversionError(f'cannot tell from {osp.basename(src)!r} whether these are '
                              f'mixnet_* or tf_mixnet_* weights (different padding and BN '
                              f'eps): pass --model-name, e.g. tf_mixnet_s')
    try:
        args = timm_mixnet_backbone_args(model_name)
    except ValueError as e:
        raise ConversionError(str(e)) from None
    state = load_state(src)
    if 'conv_stem.weight' not in state:
        raise ConversionError(f'{src} is not a timm MixNet state dict (no conv_stem.weight)')
    try:
        ours = convert_timm_mixnet(state, model_name)
    except KeyError as e:
        raise ConversionError(str(e)) from None
    num_classes = ours['fc.weight'].shape[0] if 'fc.weight' in ours else 0
    expected = MixNet(num_classes=num_classes, **args).state_dict()
    for key, value in ours.items():
        if key not in expected:
            raise ConversionError(f'{key!r} is not in MixNet-{args["arch"]}')
        if tuple(expected[key].shape) != tuple(value.shape):
            raise ConversionError(f'{key!r}: MixNet-{args["arch"]} ({model_name}) expects shape '
                                  f'{tuple(expected[key].shape)}, found {tuple(value.shape)}')
    missing = [k for k in expected if k not in ours]
    if missing:
        raise ConversionError(f'{len(missing)} MixNet-{args["arch"]} tensors missing from '
                              f'{src}, e.g. {missing[:5]}')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save({'meta': {'converted_from': f'timm {model_name}', 'backbone_args': args},
                'state_dict': OrderedDict(('backbone.' + k, v) for k, v in ours.items())}, tmp)
    os.replace(tmp, dst)
    return dict(model_name=model_name, args=args, num_classes=num_classes, tensors=len(ours))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='timm MixNet state dict')
    parser.add_argument('dst', help='output mmengine checkpoint')
    parser.add_argument('--model-name', default=None,
                        help='timm model name: mixnet_s/m/l or tf_mixnet_s/m/l')
    args = parser.parse_args(argv)
    try:
        info = convert(args.src, args.dst, args.model_name)
    except ConversionError as e:
        print(f'mixnet_timm2mmext: error: {e}', file=sys.stderr)
        return 1
    print(f'timm {info["model_name"]}: {info["tensors"]} tensors -> {args.dst}')
    print(f'build the backbone with: {info["args"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
