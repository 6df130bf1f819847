"""The first commands a newcomer types, and the messages their mistakes get (issue: a
newcomer's first hour). Each test is one stumble that happened from a fresh clone."""
import json
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.utils.launch import (DatasetNotFoundError, check_data_paths,
                                explain_empty_dataset)
from conftest import ROOT, run_tool

TINY = 'tests/configs/centernet_tiny.py'
DEMO = 'configs/spinenet/centernet_spinenet-49s_synthetic.py'
COCO_49S = 'configs/spinenet/retinanet_spinenet-49s_8xb32-640-350e_coco.py'


# ------------------------------------------------------------------ the shell tools' python
def test_dist_train_uses_the_project_venv_when_python_is_not_set(tmp_path):
    """`bash tools/dist_train.sh` used to run plain `python`: No module named 'torch'."""
    assert osp.isfile(osp.join(ROOT, '.venv', 'bin', 'python')), 'make creates .venv'
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env['PATH'] = '/usr/bin:/bin'  # no virtual environment on PATH, as in a new shell
    res = run_tool(['bash', 'tools/dist_train.sh', TINY, '1', '--help'], env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'usage: train.py' in res.stdout


def test_readme_setup_says_how_to_enter_the_environment_and_the_python_version():
    readme = open(osp.join(ROOT, 'README.md')).read()
    setup_text = readme.split('## Using mmext')[0]
    assert 'source .venv/bin/activate' in setup_text
    required = re.search(r"python_requires='>=(\d+\.\d+)'",
                         open(osp.join(ROOT, 'setup.py')).read()).group(1)
    assert f'accepts >= {required}' in setup_text and 'Python 3.11' in setup_text


# ------------------------------------------------------------------ analysis tools
def test_benchmark_without_shape_times_validation_images_and_prints_spread(python,
                                                                         synthetic_root):
    res = run_tool([python, 'tools/analysis_tools/benchmark.py', TINY, '--max-iter', '3',
                    '--num-warmup', '1', '--log-interval', '3', '--device', 'cpu'])
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'validation images' in res.stdout
    assert re.search(r'Overall fps: [\d.]+ img/s', res.stdout)
    assert re.search(r'spread: median [\d.]+ ms/img over 3 timed images \(1 warm-up',
                     res.stdout)


def test_benchmark_times_preprocessor_and_predict_without_grad():
    from mmext.analysis import build_model, synthetic_batch, time_test_step
    model = build_model(osp.join(ROOT, TINY))
    calls = []
    pre = model.data_preprocessor
    orig = pre.forward

    def counting(data, training=False):
        calls.append(torch.is_grad_enabled())
        return orig(data, training)

    pre.forward = counting
    times = time_test_step(model, [synthetic_batch((64, 64))], num_iters=3, num_warmup=2)
    assert len(times) == 3 and all(t > 0 for t in times)  # warm-up excluded
    assert calls == [False] * 5  # preprocessor ran every time, under no_grad


def test_get_flops_with_shape_needs_no_dataset_and_equals_model_complexity(python):
    assert not osp.exists(osp.join(ROOT, 'data', 'coco'))
    res = run_tool([python, 'tools/analysis_tools/get_flops.py', COCO_49S, '--shape', '250',
                    '256'])
    assert res.returncode == 0, res.stderr[-3000:]
    # SpineNet pads to multiples of 128, as the data preprocessor would
    assert 'Use size divisor set input shape from (250, 256) to (256, 256)' in res.stdout
    flops = re.search(r'Flops: ([\d.]+)G', res.stdout).group(1)
    from mmext.analysis import model_complexity
    ours = model_complexity(osp.join(ROOT, COCO_49S), (256, 256))['flops'] / 1e9
    assert float(flops) == pytest.approx(ours, abs=0.006)
    doc = open(osp.join(ROOT, 'tools', 'analysis_tools', 'get_flops.py')).read()
    assert 'mmext.analysis.complexity' not in doc


@pytest.mark.skipif(torch.cuda.is_available(), reason='--amp works on a GPU')
def test_amp_on_cpu_says_it_needs_a_gpu(python):
    res = run_tool([python, 'tools/train.py', TINY, '--amp'])
    assert res.returncode != 0
    assert 'error: --amp (automatic mixed precision) needs a CUDA GPU' in res.stderr


def test_mmdet_analyze_logs_plots_a_curve(tmp_path, python):
    log = tmp_path / 'scalars.json'
    rows = [dict(lr=1e-3, loss=2.0 - 0.1 * i, loss_cls=1.0, epoch=1 + i // 5, iter=i + 1,
                 step=i + 1) for i in range(10)]
    log.write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
    out = tmp_path / 'loss.png'
    res = run_tool([python, 'tools/analysis_tools/analyze_logs.py', 'plot_curve', str(log),
                    '--keys', 'loss', '--out', str(out)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert out.stat().st_size > 1000


# ------------------------------------------------------------------ the demo
def test_demo_config_is_seeded():
    assert Config.fromfile(osp.join(ROOT, DEMO)).randomness['seed'] == 0


def test_demo_loss_curve_is_a_png(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('demo', osp.join(ROOT, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    vis = tmp_path / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    rows = [dict(loss=3.0 / (i + 1), loss_center_heatmap=2.0 / (i + 1), iter=i + 1)
            for i in range(20)]
    (vis / 'scalars.json').write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
    out = demo.plot_loss_curve(str(tmp_path), str(tmp_path / 'loss_curve.png'))
    import cv2
    img = cv2.imread(out)
    assert img is not None and img.shape[0] >= 400 and img.shape[1] >= 800
    # small images are enlarged (boxes with them) before the labels are drawn
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 20., 30., 40.]]))
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[1., 2., 3., 4.]]))
    big, scaled = demo._upscaled(np.zeros((128, 64, 3), np.uint8), sample, 512)
    assert big.shape[:2] == (512, 256)
    assert scaled.gt_instances.bboxes.tolist() == [[40., 80., 120., 160.]]
    assert sample.gt_instances.bboxes.tolist() == [[10., 20., 30., 40.]]  # input unchanged


# ------------------------------------------------------------------ dataset messages
def test_missing_dataset_message_lists_every_phase_and_the_evaluator():
    cfg = Config.fromfile(osp.join(ROOT, COCO_49S))
    with pytest.raises(DatasetNotFoundError) as err:
        check_data_paths(cfg)
    msg = str(err.value)
    for key in ('train_dataloader.dataset.ann_file', 'val_dataloader.dataset.ann_file',
                'val_evaluator.ann_file'):
        assert key in msg, msg
    assert 'train_dataloader.dataset.data_root=/path/to/dataset/' in msg
    assert 'val_evaluator.ann_file=/path/to/dataset/annotations/instances_val2017.json' in msg
    assert "data_root=''" not in msg
    assert 'does not reach the inherited dataloaders' in msg


def test_synthetic_dataset_with_another_root_than_its_evaluator_is_refused(tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, DEMO))
    check_data_paths(cfg)  # as shipped: dataloader and evaluator read data/synthetic/
    cfg.val_dataloader.dataset.data_root = str(tmp_path) + '/'
    with pytest.raises(DatasetNotFoundError, match=r"val_evaluator\.ann_file='data/synthetic/"
                       r"annotations/val\.json' but val_dataloader\.dataset reads"):
        check_data_paths(cfg, phases=('val', ))


def _coco_cfg(tmp_path, content):
    ann = tmp_path / 'ann.json'
    ann.write_text(content)
    cfg = Config.fromfile(osp.join(ROOT, TINY))
    cfg.train_dataloader.dataset = dict(type='CocoDataset', data_root=str(tmp_path) + '/',
                                        ann_file='ann.json', metainfo=dict(classes=('circle', )),
                                        pipeline=[])
    return cfg, str(ann)


@pytest.mark.parametrize('content, why', [
    ('', 'is empty'),
    ('{"images": [], "annotations": [], "categories": []}', 'lists no images'),
    (json.dumps(dict(images=[dict(id=1, file_name='a.png', width=8, height=8)],
                     annotations=[], categories=[dict(id=1, name='dog')])),
     r"none of the config's classes \('circle',\) is among the file's categories \('dog',\)"),
])
def test_empty_or_mismatched_annotation_file_is_explained(tmp_path, content, why):
    cfg, ann = _coco_cfg(tmp_path, content)
    reason = explain_empty_dataset(cfg, ('train', ))
    assert reason is not None and re.search(why, str(reason)), reason
    assert ann in str(reason)


def test_train_tool_names_the_annotation_file_whose_classes_do_not_match(tmp_path, python):
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.png', width=8, height=8)],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 4, 4], area=16,
                          iscrowd=0)], categories=[dict(id=1, name='dog')])))
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"_base_ = {osp.join(ROOT, TINY)!r}\n"
                   "train_dataloader = dict(dataset=dict(_delete_=True, type='CocoDataset', "
                   f"data_root={str(tmp_path) + '/'!r}, ann_file='ann.json', data_prefix=dict(img=''), "
                   "metainfo=dict(classes=('circle', 'square', 'triangle')), "
                   "filter_cfg=dict(filter_empty_gt=True), pipeline=[]))\n")
    res = run_tool([python, 'tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')])
    assert res.returncode != 0
    assert "none of the config's classes" in res.stderr and str(ann) in res.stderr, \
        res.stderr[-3000:]
    assert 'need at least one array' not in res.stderr


# ------------------------------------------------------------------ synthetic data
def test_synthetic_boxes_lie_inside_their_images(synthetic_root):
    sides = []
    for split in ('train', 'val'):
        coco = json.load(open(osp.join(synthetic_root, 'annotations', f'{split}.json')))
        size = {im['id']: (im['width'], im['height']) for im in coco['images']}
        for a in coco['annotations']:
            x, y, w, h = a['bbox']
            iw, ih = size[a['image_id']]
            assert x >= 0 and y >= 0 and x + w <= iw + 1e-6 and y + h <= ih + 1e-6, a
            sides.append(min(w, h))
    assert min(sides) > 5


def test_synthetic_set_of_an_older_generator_is_generated_again(tmp_path):
    from mmext.datasets.synthetic import DEFAULT_SPLITS, SyntheticSpec, ensure_generated
    ensure_generated(str(tmp_path), ['val'])
    ann = tmp_path / 'annotations' / 'val.json'
    coco = json.load(open(ann))
    coco['info']['version'] = '1'
    ann.write_text(json.dumps(coco))
    ensure_generated(str(tmp_path), ['val'])
    assert json.load(open(ann))['info']['version'] != '1'
    assert isinstance(DEFAULT_SPLITS['val'], SyntheticSpec)


# ------------------------------------------------------------------ mmcv's CUDA ops
def test_mmcv_flavour_builds_cuda_ops_only_when_they_can_work():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mmcv_flavour', osp.join(ROOT, 'tools', 'mmcv_flavour.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.decide(None, False, None)[0] == 'cpu'
    assert mod.decide('12.8', True, '/usr/local/cuda/bin/nvcc')[0] == 'cuda'
    flavour, msg = mod.decide('12.8', True, None)
    assert flavour == 'cpu' and 'nvcc' in msg and 'NMS' in msg and 'CUDA_HOME' in msg
    assert mod.decide('12.8', False, None, force_cuda='1')[0] == 'cuda'
    assert mod.find_nvcc({'PATH': '/nonexistent', 'CUDA_HOME': '/nonexistent'}) in (
        None, '/usr/local/cuda/bin/nvcc')
