"""tools/train.py, test.py, dist_train.sh as a user runs them, on the synthetic set."""
import os.path as osp
import re

import pytest
import torch

from conftest import free_port, logged_losses as _losses, run_tool

TINY = osp.join('tests', 'configs', 'centernet_tiny.py')


def _weights(path):
    return torch.load(path, map_location='cpu')['state_dict']


def _assert_ok(res):
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]


def test_short_training_reduces_loss_and_evaluates(tmp_path, python, synthetic_root):
    wd = str(tmp_path / 'run')
    res = run_tool([python, 'tools/train.py', TINY, '--work-dir', wd, '--cfg-options',
                    'train_cfg.max_epochs=6', 'train_cfg.val_interval=6'])
    _assert_ok(res)
    losses = _losses(wd)
    assert len(losses) == 24
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.85 * first, f'loss did not fall: {first:.3f} -> {last:.3f}'
    out = res.stdout + res.stderr
    m = re.search(r'coco/bbox_mAP: (-?[\d.]+)', out)
    assert m, 'the evaluator printed no mAP'
    assert 0.0 <= float(m.group(1)) <= 1.0


def test_resume_matches_uninterrupted_run(tmp_path, python, synthetic_root):
    full, part = str(tmp_path / 'full'), str(tmp_path / 'part')
    _assert_ok(run_tool([python, 'tools/train.py', TINY, '--work-dir', full]))
    # "stopped" after epoch 1 ...
    _assert_ok(run_tool([python, 'tools/train.py', TINY, '--work-dir', part, '--cfg-options',
                         'train_cfg.max_epochs=1']))
    # ... and resumed from the latest checkpoint in the work dir
    res = run_tool([python, 'tools/train.py', TINY, '--work-dir', part, '--resume'])
    _assert_ok(res)
    assert 'resumed epoch: 1, iter: 4' in (res.stdout + res.stderr)
    a, b = _weights(osp.join(full, 'epoch_2.pth')), _weights(osp.join(part, 'epoch_2.pth'))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    ckpt = torch.load(osp.join(part, 'epoch_2.pth'), map_location='cpu')
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 8
    # the epoch-based MultiStepLR (milestone 1) resumed at its step, so the LR was halved once
    assert ckpt['param_schedulers'][1]['last_step'] == 2
    assert ckpt['optimizer']['param_groups'][0]['lr'] == pytest.approx(1e-3)


def test_two_process_cpu_training_then_test(tmp_path, python, synthetic_root):
    wd = str(tmp_path / 'ddp')
    res = run_tool(['bash', 'tools/dist_train.sh', TINY, '2', '--work-dir', wd,
                    '--cfg-options', 'train_cfg.max_epochs=1'],
                   env=dict(PYTHON=python, PORT=str(free_port())))
    _assert_ok(res)
    log = res.stdout + res.stderr
    assert 'Distributed launcher: pytorch' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert osp.exists(osp.join(wd, 'epoch_1.pth'))
    res = run_tool([python, 'tools/test.py', TINY, osp.join(wd, 'epoch_1.pth'),
                    '--work-dir', str(tmp_path / 'test')])
    _assert_ok(res)
    assert re.search(r'coco/bbox_mAP: [\d.]+', res.stdout + res.stderr)


def test_missing_dataset_names_the_file_and_the_fix(tmp_path, python):
    cfg = tmp_path / 'coco_cfg.py'
    cfg.write_text("_base_ = 'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py'\n"
                   "data_root = 'nowhere/coco/'\n"
                   "train_dataloader = dict(dataset=dict(dataset=dict(data_root=data_root)))\n")
    res = run_tool([python, 'tools/train.py', str(cfg), '--work-dir', str(tmp_path / 'w')])
    assert res.returncode != 0
    err = res.stderr
    assert "'nowhere/coco/annotations/instances_train2017.json'" in err
    assert '--cfg-options train_dataloader.dataset.dataset.data_root=' in err
    assert 'Traceback' not in err


def test_test_tool_rejects_a_non_pickle_out_file(python):
    res = run_tool([python, 'tools/test.py', TINY, 'missing.pth', '--out', 'preds.json'])
    assert res.returncode != 0
    assert "error: --out 'preds.json' must end in .pkl or .pickle" in res.stderr
