"""The weight converters in tools/model_converters/ (the parts that need no TensorFlow).

ESPNetv2: a re-implementation of the official EdgeNets ``EESPNet`` written here with the
official module names (sacmehta/EdgeNets ``model/classification/espnetv2.py``,
``nn_layers/eesp.py``, ``nn_layers/espnet_utils.py``) gives a state dict in the official key
layout and reference logits; the converted checkpoint must reproduce them in mmext's ESPNetv2.
"""
import importlib.util
import os.path as osp
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import ROOT, run_tool

REGISTRY_SCOPE = 'mmdet'
PY = sys.executable


def load_converter(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(ROOT, 'tools', 'model_converters', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize_(model, seed=0):
    """Random weights everywhere, BN running statistics included."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype != torch.float32:
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith('running_mean') or name.endswith('bias'):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.dim() == 1:  # BN gamma, PReLU slopes
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / fan_in)**0.5)
    return model


# ---- the official EESPNet's module layout (re-implemented, official names) ----
class _CBR(nn.Module):
    def __init__(self, c_in, c_out, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, bias=False, groups=groups)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.PReLU(c_out)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class _CB(nn.Module):
    def __init__(self, c_in, c_out, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, bias=False, groups=groups)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class _BR(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.PReLU(c)

    def forward(self, x):
        return self.act(self.bn(x))


class _CDilated(nn.Module):
    def __init__(self, c, stride, d):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride, d, dilation=d, groups=c, bias=False)

    def forward(self, x):
        return self.conv(x)


class _OfficialEESP(nn.Module):
    def __init__(self, c_in, c_out, stride=1, k=4, r_lim=7, down_avg=False):
        super().__init__()
        n = c_out // k
        self.stride, self.down_avg = stride, down_avg
        self.proj_1x1 = _CBR(c_in, n, 1, groups=k)
        sizes = sorted(3 + 2 * i if 3 + 2 * i <= r_lim else 3 for i in range(k))
        self.spp_dw = nn.ModuleList(_CDilated(n, stride, (s - 1) // 2) for s in sizes)
        self.conv_1x1_exp = _CB(c_out, c_out, 1, groups=k)
        self.br_after_cat = _BR(c_out)
        self.module_act = nn.PReLU(c_out)

    def forward(self, x):
        y = self.proj_1x1(x)
        outs = [self.spp_dw[0](y)]
        for conv in self.spp_dw[1:]:
            outs.append(conv(y) + outs[-1])
        out = self.conv_1x1_exp(self.br_after_cat(torch.cat(outs, 1)))
        if self.stride == 2 and self.down_avg:
            return out
        if out.size() == x.size():
            out = out + x
        return self.module_act(out)


class _OfficialDownSampler(nn.Module):
    def __init__(self, c_in, c_out, k=4, r_lim=9, reinf=True):
        super().__init__()
        self.eesp = _OfficialEESP(c_in, c_out - c_in, 2, k, r_lim, down_avg=True)
        self.avg = nn.AvgPool2d(3, 2, 1)
        if reinf:
            self.inp_reinf = nn.Sequential(_CBR(3, 3, 3, 1), _CB(3, c_out, 1, 1))
        self.act = nn.PReLU(c_out)

    def forward(self, x, image=None):
        avg = self.avg(x)
        out = torch.cat([avg, self.eesp(x)], 1)
        if image is not None:
            while True:
                image = F.avg_pool2d(image, 3, 2, 1)
                if image.size(2) == avg.size(2):
                    break
            out = out + self.inp_reinf(image)
        return self.act(out)


class OfficialEESPNet(nn.Module):
    def __init__(self, widths, num_classes=1000):
        super().__init__()
        c = widths
        self.level1 = _CBR(3, c[0], 3, 2)
        self.level2_0 = _OfficialDownSampler(c[0], c[1], r_lim=13)
        self.level3_0 = _OfficialDownSampler(c[1], c[2], r_lim=11)
        self.level3 = nn.ModuleList(_OfficialEESP(c[2], c[2], r_lim=9) for _ in range(3))
        self.level4_0 = _OfficialDownSampler(c[2], c[3], r_lim=9)
        self.level4 = nn.ModuleList(_OfficialEESP(c[3], c[3], r_lim=7) for _ in range(7))
        self.level5_0 = _OfficialDownSampler(c[3], c[4], r_lim=7)  # reinf built, never used
        self.level5 = nn.ModuleList(_OfficialEESP(c[4], c[4], r_lim=5) for _ in range(3))
        self.level5.append(_CBR(c[4], c[4], 3, 1, groups=c[4]))
        self.level5.append(_CBR(c[4], c[5], 1, 1, groups=4))
        self.classifier = nn.Linear(c[5], num_classes)

    def forward(self, image):
        x = self.level2_0(self.level1(image), image)
        x = self.level3_0(x, image)
        for unit in self.level3:
            x = unit(x)
        x = self.level4_0(x, image)
        for unit in self.level4:
            x = unit(x)
        x = self.level5_0(x)
        for unit in self.level5:
            x = unit(x)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def detection_features(self, image):
        """EdgeNets model/detection/espnetv2.py ESPNetv2SSD.forward, base network part: the
        image also goes into level5_0, and level5 runs to its end (level5[4] kept)."""
        x = self.level2_0(self.level1(image), image)
        x = self.level3_0(x, image)
        for unit in self.level3:
            x = unit(x)
        out_l3 = x
        x = self.level4_0(x, image)
        for unit in self.level4:
            x = unit(x)
        out_l4 = x
        x = self.level5_0(x, image)
        for unit in self.level5:
            x = unit(x)
        return out_l3, out_l4, x


def _official_espnetv2(s, tmp_path):
    from mmext.models.backbones.espnetv2 import ESPNETV2_WIDTHS
    ref = randomize_(OfficialEESPNet(ESPNETV2_WIDTHS[s]), seed=int(s * 10)).eval()
    src = str(tmp_path / f'espnetv2_s_{s}_imagenet_224x224.pth')
    torch.save(ref.state_dict(), src)
    return ref, src


@pytest.mark.parametrize('s', [0.5, 1.0, 1.25, 1.5, 2.0])
def test_espnetv2_official_logits(tmp_path, s):
    from mmengine.runner import load_checkpoint
    from mmext.models.backbones.espnetv2 import ESPNetv2
    ref, src = _official_espnetv2(s, tmp_path)
    dst = str(tmp_path / 'mmext.pth')
    res = run_tool([PY, 'tools/model_converters/espnetv2_official2mmext.py', src, dst])
    assert res.returncode == 0, res.stderr
    # the unused official weights are reported, with the reason
    assert 'dropped level5_0.inp_reinf.0.conv.weight' in res.stdout
    assert 'dropped level2_0.eesp.module_act.weight' in res.stdout
    model = ESPNetv2(widen_factor=s, num_classes=1000).eval()
    load_checkpoint(model, dst, strict=True, revise_keys=[(r'^backbone\.', '')])
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        want, got = ref(x), model(x)
    err = ((got - want).abs().max() / want.abs().max()).item()
    assert err < 1e-5, err


@pytest.mark.parametrize('s', [0.5, 2.0])
def test_espnetv2_official_detection_backbone_features(tmp_path, s):
    """--detection: the EdgeNets SSD's base network (level-5 image shortcut, final 1x1 kept)
    gives the same level 3-5 features as ESPNetv2(s) with the converted weights."""
    from mmengine.runner import load_checkpoint
    from mmext.models.backbones.espnetv2 import ESPNetv2
    ref, src = _official_espnetv2(s, tmp_path)
    dst = str(tmp_path / 'mmext_det.pth')
    res = run_tool([PY, 'tools/model_converters/espnetv2_official2mmext.py', src, dst,
                    '--detection'])
    assert res.returncode == 0, res.stderr
    assert 'dropped level5_0.inp_reinf' not in res.stdout
    assert 'dropped classifier.weight' in res.stdout
    model = ESPNetv2(widen_factor=s, out_indices=(2, 3, 4)).eval()
    load_checkpoint(model, dst, strict=True, revise_keys=[(r'^backbone\.', '')])
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        want, got = ref.detection_features(x), model(x)
    for w, g in zip(want, got):
        assert g.shape == w.shape
        assert ((g - w).abs().max() / w.abs().max()).item() < 1e-5


def test_espnetv2_wrong_width_and_bad_input(tmp_path):
    _, src = _official_espnetv2(1.0, tmp_path)
    dst = tmp_path / 'out.pth'
    res = run_tool([PY, 'tools/model_converters/espnetv2_official2mmext.py', src, str(dst),
                    '--widen-factor', '2.0'])
    assert res.returncode == 1
    assert 'expects level2_0.act.weight of shape (128,), found (64,)' in res.stderr
    res = run_tool([PY, 'tools/model_converters/espnetv2_official2mmext.py',
                    str(tmp_path / 'missing.pth'), str(dst)])
    assert res.returncode == 1 and 'no such file' in res.stderr
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    res = run_tool([PY, 'tools/model_converters/espnetv2_official2mmext.py',
                    str(tmp_path / 'other.pth'), str(dst)])
    assert res.returncode == 1 and 'not an EdgeNets ESPNetv2 state dict' in res.stderr
    assert not dst.exists()


def test_spinenet_tf_converter_missing_checkpoint(tmp_path):
    """Checked before TensorFlow is imported, so it runs where TF is absent too."""
    dst = tmp_path / 'out.pth'
    res = run_tool([PY, 'tools/model_converters/spinenet_tf2mmext.py',
                    str(tmp_path / 'ckpt-1'), str(dst), '--arch', '49'])
    assert res.returncode == 1
    assert 'no TF checkpoint at' in res.stderr and 'ckpt-1.index' in res.stderr
    (tmp_path / 'empty').mkdir()
    res = run_tool([PY, 'tools/model_converters/spinenet_tf2mmext.py',
                    str(tmp_path / 'empty'), str(dst), '--arch', '49'])
    assert res.returncode == 1 and 'without a TF checkpoint' in res.stderr
    assert not dst.exists()


def test_spinenet_anchor_reordering():
    """Model Garden anchor (scale s, aspect w/h a) -> mmdet anchor (ratio h/w = 1/a, scale s),
    mmdet ratio-major with ratios ascending."""
    conv = load_converter('spinenet_tf2mmext')
    order = conv.mg_to_mmdet_anchor_order(9)
    ar = conv.MG_ASPECT_RATIOS
    for mm_index, mg_index in enumerate(order):
        r, s = divmod(mm_index, 3)  # mmdet: ratios (0.5, 1, 2) outer, scales inner
        mg_s, mg_a = divmod(mg_index, 3)
        assert mg_s == s and 1.0 / ar[mg_a] == (0.5, 1.0, 2.0)[r]
    assert len(conv.COCO_IDS) == 80 and conv.COCO_IDS[-1] == 90


# ---- darknet: a YOLOv3 cfg as darknet writes it and .weights in darknet's layout ----
YOLO_ANCHORS = '10,13, 16,30, 33,23, 30,61, 62,45, 59,119, 116,90, 156,198, 373,326'


def yolov3_cfg(num_classes, gaussian):
    """yolov3.cfg's layer list (pjreddie/darknet; Gaussian_yolov3_*.cfg of
    jwchoi384/Gaussian_YOLOv3 differs only in the [Gaussian_yolo] layers and their filters)."""
    def conv(filters, size, stride=1, bn=True, act='leaky'):
        bn_line = 'batch_normalize=1\n' if bn else ''
        return (f'[convolutional]\n{bn_line}filters={filters}\nsize={size}\nstride={stride}\n'
                f'pad=1\nactivation={act}\n')
    attrib = num_classes + (9 if gaussian else 5)
    yolo = 'Gaussian_yolo' if gaussian else 'yolo'
    parts = ['[net]\nbatch=1\nwidth=416\nheight=416\nchannels=3\n', conv(32, 3)]
    c = 32
    for n in (1, 2, 8, 8, 4):
        c *= 2
        parts.append(conv(c, 3, 2))
        for _ in range(n):
            parts += [conv(c // 2, 1), conv(c, 3), '[shortcut]\nfrom=-3\nactivation=linear\n']
    for s, (width, mask, skip) in enumerate(((512, '6,7,8', None), (256, '3,4,5', 61),
                                             (128, '0,1,2', 36))):
        if skip:
            parts += ['[route]\nlayers = -4\n', conv(width, 1), '[upsample]\nstride=2\n',
                      f'[route]\nlayers = -1, {skip}\n']
        for k in (1, 3, 1, 3, 1):
            parts.append(conv(width * (2 if k == 3 else 1), k))
        parts += [conv(width * 2, 3), conv(3 * attrib, 1, bn=False, act='linear'),
                  f'[{yolo}]\nmask = {mask}\nanchors = {YOLO_ANCHORS}\nclasses={num_classes}\n'
                  f'num=9\njitter=.3\nignore_thresh = .7\ntruth_thresh = 1\nrandom=1\n']
    return '\n'.join(parts)


def write_darknet_weights(path, convs):
    """darknet's save_weights: int32 major, minor, revision, int64 seen, then per conv layer
    [beta, gamma, mean, var | bias] and the (out, in, k, k) kernel, float32."""
    import numpy as np
    with open(path, 'wb') as f:
        np.array([0, 2, 0], dtype=np.int32).tofile(f)
        np.array([32013312], dtype=np.int64).tofile(f)
        for arrays in convs:
            for a in arrays:
                np.asarray(a, dtype=np.float32).ravel().tofile(f)


def _yolo_model(gaussian, num_classes=3):
    from mmengine.config import Config
    from mmext.registry import MODELS
    import mmext  # noqa: F401
    import mmdet
    path = (osp.join(ROOT, 'configs/gaussian_yolov3/gaussian-yolov3_d53_8xb8-ms-608-273e_coco.py')
            if gaussian else osp.join(osp.dirname(mmdet.__file__),
                                      '.mim/configs/yolo/yolov3_d53_8xb8-ms-608-273e_coco.py'))
    cfg = Config.fromfile(path)
    cfg.model.bbox_head.num_classes = num_classes
    return randomize_(MODELS.build(cfg.model), seed=3).eval()


def _darknet_files(tmp_path, model, gaussian, num_classes=3):
    """The model's weights as darknet would store them (Gaussian heads interleaved again)."""
    conv = load_converter('darknet2mmext')
    names = [t[3] for t in conv.yolov3_template() if t[3]]
    state = model.state_dict()
    order = conv.gaussian_channel_order(3, num_classes)
    inverse = [order.index(i) for i in range(len(order))]
    layers = []
    for name in names:
        if name + '.bn.weight' in state:
            layers.append([state[f'{name}.bn.bias'], state[f'{name}.bn.weight'],
                           state[f'{name}.bn.running_mean'], state[f'{name}.bn.running_var'],
                           state[f'{name}.conv.weight']])
        else:
            w, b = state[f'{name}.weight'], state[f'{name}.bias']
            if gaussian:
                w, b = w[inverse], b[inverse]
            layers.append([b, w])
    cfg = tmp_path / 'net.cfg'
    cfg.write_text(yolov3_cfg(num_classes, gaussian))
    weights = tmp_path / 'net.weights'
    write_darknet_weights(weights, [[t.numpy() for t in layer] for layer in layers])
    return str(cfg), str(weights)


@pytest.mark.slow  # Darknet-53 at full width: ~20-30 s each; run by `make test-peers` too
@pytest.mark.parametrize('gaussian', [True, False], ids=['gaussian-yolov3', 'yolov3'])
def test_darknet_round_trip_exact(tmp_path, gaussian):
    from mmengine.runner import load_checkpoint
    model = _yolo_model(gaussian)
    cfg, weights = _darknet_files(tmp_path, model, gaussian)
    dst = str(tmp_path / 'mm.pth')
    res = run_tool([PY, 'tools/model_converters/darknet2mmext.py', cfg, weights, dst])
    assert res.returncode == 0, res.stderr
    fresh = randomize_(_yolo_model(gaussian), seed=4)
    load_checkpoint(fresh, dst, strict=True)
    want, got = model.state_dict(), fresh.state_dict()
    for key in want:
        assert torch.equal(want[key], got[key]), key
    # the prediction maps, too: mmext's means-first layout reads darknet's interleaved one
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        a, b = model.bbox_head(model.neck(model.backbone(x))), \
            fresh.bbox_head(fresh.neck(fresh.backbone(x)))
    assert all(torch.equal(p, q) for p, q in zip(a[0], b[0]))


def test_darknet_gaussian_permutation():
    """darknet: mu_x, sigma_x, mu_y, sigma_y, mu_w, sigma_w, mu_h, sigma_h, obj, classes."""
    conv = load_converter('darknet2mmext')
    order = conv.gaussian_channel_order(2, 1)  # 10 values per anchor
    assert order[:10] == [0, 2, 4, 6, 1, 3, 5, 7, 8, 9]
    assert order[10:] == [10 + i for i in [0, 2, 4, 6, 1, 3, 5, 7, 8, 9]]


def test_darknet_bad_input(tmp_path):
    cfg = tmp_path / 'net.cfg'
    cfg.write_text(yolov3_cfg(3, True))
    conv = load_converter('darknet2mmext')
    convs, _ = conv.plan(conv.parse_cfg(str(cfg)))
    need = sum((4 if c['bn'] else 1) * c['c_out'] + c['c_out'] * c['c_in'] * c['k']**2
               for c in convs)
    import numpy as np
    short = tmp_path / 'short.weights'
    write_darknet_weights(short, [[np.zeros(need - 10)]])
    dst = tmp_path / 'out.pth'
    script = 'tools/model_converters/darknet2mmext.py'
    res = run_tool([PY, script, str(cfg), str(short), str(dst)])
    assert res.returncode == 1
    assert f'too short for its cfg: the cfg needs {need} float32 values' in res.stderr
    assert f'the file has {need - 10}' in res.stderr
    # a cfg for 80 classes does not fit weights for 3 classes: wrong variant
    cfg80 = tmp_path / 'net80.cfg'
    cfg80.write_text(yolov3_cfg(80, True))
    full = tmp_path / 'full.weights'
    write_darknet_weights(full, [[np.zeros(need)]])
    res = run_tool([PY, script, str(cfg80), str(full), str(dst)])
    assert res.returncode == 1 and 'too short for its cfg' in res.stderr
    res = run_tool([PY, script, str(tmp_path / 'none.cfg'), str(full), str(dst)])
    assert res.returncode == 1 and 'no such cfg file' in res.stderr
    res = run_tool([PY, script, str(cfg), str(tmp_path / 'none.weights'), str(dst)])
    assert res.returncode == 1 and 'no such weights file' in res.stderr
    bad = tmp_path / 'bad.cfg'
    bad.write_text(yolov3_cfg(3, True).replace('size=3\nstride=2', 'size=5\nstride=2', 1))
    res = run_tool([PY, script, str(bad), str(full), str(dst)])
    assert res.returncode == 1
    assert 'layer 1 (backbone.conv_res_block1.conv): size=5 stride=2' in res.stderr
    assert not dst.exists()


# ---- MixNet from timm (random weights: no download) ----
@pytest.mark.parametrize('name', ['mixnet_s', 'mixnet_m', 'mixnet_l', 'tf_mixnet_s',
                                  'tf_mixnet_m', 'tf_mixnet_l'])
def test_mixnet_timm_logits(tmp_path, name):
    """timm's own BN eps (1e-5 for mixnet_*, 1e-3 for tf_mixnet_*) and padding: the converter
    picks the matching MixNet arguments; logits within 1e-5."""
    timm = pytest.importorskip('timm')
    from mmext.models.backbones.mixnet import MixNet
    ref = randomize_(timm.create_model(name, pretrained=False), seed=5).eval()
    src = str(tmp_path / f'{name}-0123abcd.pth')
    torch.save(ref.state_dict(), src)
    conv = load_converter('mixnet_timm2mmext')
    info = conv.convert(src, str(tmp_path / 'mm.pth'))  # model name read from the file name
    assert info['model_name'] == name
    model = MixNet(num_classes=1000, **info['args']).eval()
    state = torch.load(tmp_path / 'mm.pth', weights_only=True)['state_dict']
    model.load_state_dict({k[len('backbone.'):]: v for k, v in state.items()}, strict=True)
    x = torch.randn(2, 3, 96, 128)  # even sizes: TF 'same' pads asymmetrically there
    with torch.no_grad():
        want, got = ref(x), model(x)
    err = ((got - want).abs().max() / want.abs().max()).item()
    assert err < 1e-5, err


def test_mixnet_tf_weights_need_tf_padding():
    """Why the converter insists on the model name: tf_ weights in a PyTorch-padded MixNet."""
    timm = pytest.importorskip('timm')
    from mmext.models.backbones.mixnet import (MixNet, check_timm_mixnet_backbone,
                                               convert_timm_mixnet, timm_mixnet_backbone_args)
    ref = randomize_(timm.create_model('tf_mixnet_s', pretrained=False), seed=6).eval()
    args = timm_mixnet_backbone_args('tf_mixnet_s')
    wrong = MixNet(num_classes=1000, **dict(args, tf_padding=False)).eval()
    wrong.load_state_dict(convert_timm_mixnet(ref.state_dict(), 'tf_mixnet_s'))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        err = ((wrong(x) - ref(x)).abs().max() / ref(x).abs().max()).item()
    assert err > 1e-2
    with pytest.raises(ValueError, match=r'tf_padding=False \(needs True\)'):
        check_timm_mixnet_backbone('tf_mixnet_s', wrong)
    with pytest.raises(ValueError, match=r"BN eps=0.001 \(needs 1e-05\)"):
        check_timm_mixnet_backbone('mixnet_s', MixNet('S'))
    with pytest.warns(UserWarning, match='no model_name given'):
        convert_timm_mixnet(ref.state_dict())


def test_mixnet_converter_errors(tmp_path):
    timm = pytest.importorskip('timm')
    script = 'tools/model_converters/mixnet_timm2mmext.py'
    src = str(tmp_path / 'weights.pth')
    torch.save(timm.create_model('mixnet_s', pretrained=False).state_dict(), src)
    dst = tmp_path / 'out.pth'
    res = run_tool([PY, script, src, str(dst)])
    assert res.returncode == 1 and 'pass --model-name' in res.stderr
    res = run_tool([PY, script, src, str(dst), '--model-name', 'mixnet_m'])
    assert res.returncode == 1
    assert 'MixNet-M (mixnet_m) expects shape' in res.stderr and 'found' in res.stderr
    res = run_tool([PY, script, src, str(dst), '--model-name', 'mixnet_xl'])
    assert res.returncode == 1 and "'mixnet_xl' is not one of" in res.stderr
    res = run_tool([PY, script, str(tmp_path / 'none.pth'), str(dst), '--model-name',
                    'mixnet_s'])
    assert res.returncode == 1 and 'no such file' in res.stderr
    assert not dst.exists()
