"""SpineNet and RetinaNet-SpineNet vs TF Model Garden: random TF weights (BN statistics
included) in Model Garden's checkpoint layout -> tools/model_converters/spinenet_tf2mmext.py ->
mmext; every level (and head output) within 1e-4 of TF relative to its largest value."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from .conftest import ROOT, load_converter, rel_err, run_peer

REGISTRY_SCOPE = 'mmdet'
TOL = 1e-4
SIZES = '256x256,128x384'  # square and non-square
FIGURES = osp.join(ROOT, 'work_dirs', 'peers', 'spinenet_figures.json')


def _record(name, figures):
    import os
    os.makedirs(osp.dirname(FIGURES), exist_ok=True)
    data = json.load(open(FIGURES)) if osp.exists(FIGURES) else {}
    data[name] = figures
    json.dump(data, open(FIGURES, 'w'), indent=1, sort_keys=True)


def _convert(tmp_path, kind, arch, sizes):
    out = str(tmp_path / f'{kind}-{arch}')
    run_peer(['tests/peers/tf_reference.py', kind, '--arch', arch, '--sizes', sizes,
              '--out', out])
    run_peer(['tools/model_converters/spinenet_tf2mmext.py', osp.join(out, 'ckpt'),
              osp.join(out, 'mmext.pth'), '--arch', arch])
    return out, dict(np.load(osp.join(out, 'ref.npz')))


def _spinenet(arch):
    from mmext.models.backbones.spinenet import SpineNet
    return SpineNet(arch, tf_compat='model_garden').eval()


def _load_backbone(model, path):
    state = torch.load(path, map_location='cpu', weights_only=True)['state_dict']
    state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    model.load_state_dict(state, strict=True)


@pytest.mark.parametrize('arch', ['49S', '49', '96', '143'])
def test_spinenet_levels_match_model_garden(tmp_path, arch):
    out, ref = _convert(tmp_path, 'spinenet', arch, SIZES)
    model = _spinenet(arch)
    _load_backbone(model, osp.join(out, 'mmext.pth'))
    figures = {}
    with torch.no_grad():
        for i, size in enumerate(SIZES.split(',')):
            feats = model(torch.from_numpy(ref[f'input_{i}']))
            for level, f in zip(model.out_levels, feats):
                figures[f'{size} P{level}'] = rel_err(f.numpy(), ref[f'{i}_{level}'])
    _record(f'SpineNet-{arch}', figures)
    assert max(figures.values()) < TOL, figures


def test_spinenet_190_parameter_mapping(tmp_path):
    """190 (126.6 M parameters): every tensor maps with its shape, strict load; outputs too at
    one small size."""
    out, ref = _convert(tmp_path, 'spinenet', '190', '128x128')
    model = _spinenet('190')
    _load_backbone(model, osp.join(out, 'mmext.pth'))
    with torch.no_grad():
        feats = model(torch.from_numpy(ref['input_0']))
    figures = {f'128x128 P{lv}': rel_err(f.numpy(), ref[f'0_{lv}'])
               for lv, f in zip(model.out_levels, feats)}
    _record('SpineNet-190', figures)
    assert max(figures.values()) < TOL, figures


def test_retinanet_spinenet49_head_matches_model_garden(tmp_path):
    """Model Garden's own retinanet_spinenet_coco model (trainer checkpoint layout, 91 classes)
    -> the converted config; class and box outputs per level after the documented anchor /
    class / delta reordering."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmext.registry import MODELS
    conv = load_converter('spinenet_tf2mmext')
    out, ref = _convert(tmp_path, 'retinanet', '49', '256x384')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/spinenet/'
                                   'retinanet_spinenet-49_tf-model-garden_coco.py'))
    cfg.model.backbone.norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01)
    cfg.model.bbox_head.norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01)
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, osp.join(out, 'mmext.pth'), strict=True)
    anchors = conv.mg_to_mmdet_anchor_order(9)
    cls_idx = [a * 91 + c for a in anchors for c in conv.COCO_IDS]
    box_idx = [a * 4 + d for a in anchors for d in (1, 0, 3, 2)]
    with torch.no_grad():
        cls_scores, bbox_preds = model.bbox_head(model.backbone(torch.from_numpy(ref['input_0'])))
    figures = {}
    for level, cls, box in zip(range(3, 8), cls_scores, bbox_preds):
        figures[f'256x384 P{level} class'] = rel_err(
            cls.numpy(), ref[f'0_scores_{level}'][..., cls_idx].transpose(0, 3, 1, 2))
        figures[f'256x384 P{level} box'] = rel_err(
            box.numpy(), ref[f'0_boxes_{level}'][..., box_idx].transpose(0, 3, 1, 2))
    _record('RetinaNet-SpineNet-49', figures)
    assert max(figures.values()) < TOL, figures


def test_converter_rejects_wrong_variant_and_other_networks(tmp_path):
    out = str(tmp_path / 'other')
    run_peer(['tests/peers/tf_reference.py', 'other', '--arch', '-', '--out', out])
    run_peer(['tests/peers/tf_reference.py', 'spinenet', '--arch', '49S', '--sizes', '128x128',
              '--out', str(tmp_path / 's')])
    from .conftest import PEERS_PY
    import subprocess
    script = osp.join(ROOT, 'tools/model_converters/spinenet_tf2mmext.py')
    dst = tmp_path / 'out.pth'

    def convert(src, arch):
        env = dict(__import__('os').environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
        return subprocess.run([PEERS_PY, script, src, str(dst), '--arch', arch], env=env,
                              capture_output=True, text=True, timeout=900)

    res = convert(str(tmp_path / 's' / 'ckpt'), '49')
    assert res.returncode == 1
    err = res.stderr
    assert 'is not a Model Garden SpineNet-49 backbone' in err and 'shape' in err, err[-2000:]
    assert 'as SpineNet-49S' in err, err[-2000:]
    res = convert(osp.join(out, 'model_ckpt'), '49')
    assert res.returncode == 1 and 'holds no SpineNet' in res.stderr, res.stderr[-2000:]
    res = convert(osp.join(out, 'backbone_ckpt'), '49')
    assert res.returncode == 1
    assert 'is not a Model Garden SpineNet-49 backbone' in res.stderr, res.stderr[-2000:]
    assert not dst.exists()
