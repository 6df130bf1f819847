"""CyclicWarmRestartLR: the ESPNetv2 paper's cyclic learning-rate schedule (arXiv:1811.11431,
ImageNet training; official sacmehta/ESPNetv2 imagenet/LRSchedule.py) as an mmengine scheduler."""
import pytest
import torch
from mmengine.optim import OptimWrapper

import mmext  # noqa: F401
from mmext.engine import CyclicWarmRestartLR
from mmext.registry import PARAM_SCHEDULERS

# Hand-computed from the paper's recipe (eta_min = 0.1, eta_max = 0.5, T = 5, range halved at
# epoch 51): epoch 0 warms up at eta_min, then 0.5 0.4 0.3 0.2 0.1 repeated; from epoch 51
# 0.25 0.2 0.15 0.1 0.05 repeated.
PAPER_FIRST_60 = ([0.1] + [0.5, 0.4, 0.3, 0.2, 0.1] * 10 +
                  [0.25, 0.2, 0.15, 0.1, 0.05] + [0.25, 0.2, 0.15, 0.1])


def _optimizer(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9,
                           nesterov=True, weight_decay=4e-5)


def _run(scheduler, optimizer, steps):
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    return lrs


def test_reproduces_paper_lr_sequence_for_first_60_epochs():
    assert len(PAPER_FIRST_60) == 60
    opt = _optimizer(0.1)
    lrs = _run(CyclicWarmRestartLR(opt), opt, 60)
    assert lrs == pytest.approx(PAPER_FIRST_60, abs=1e-12)


def test_range_halves_at_each_milestone_over_300_epochs():
    opt = _optimizer(0.1)
    lrs = _run(CyclicWarmRestartLR(opt), opt, 300)
    # each milestone restarts the cycle at eta_max / 2**k
    for k, m in enumerate((51, 101, 131, 161, 191, 221, 251, 281), start=1):
        assert lrs[m] == pytest.approx(0.5 / 2**k)
        assert lrs[m + 4] == pytest.approx(0.1 / 2**k)
    assert lrs[-1] == pytest.approx(0.1 / 2**8 * 2)  # epoch 299: position 3 of the last cycle


def test_registered_and_buildable_from_a_config_dict():
    opt = OptimWrapper(_optimizer(0.1))
    sched = PARAM_SCHEDULERS.build(
        dict(type='CyclicWarmRestartLR', optimizer=opt, cycle_len=5, by_epoch=True))
    assert isinstance(sched, CyclicWarmRestartLR)


def test_iteration_based_conversion_keeps_the_rate_constant_within_an_epoch():
    opt = _optimizer(0.1)
    sched = CyclicWarmRestartLR.build_iter_from_epoch(opt, epoch_length=3)
    lrs = _run(sched, opt, 3 * 60)
    assert lrs[::3] == pytest.approx(PAPER_FIRST_60)
    assert lrs[1::3] == pytest.approx(PAPER_FIRST_60)


def test_state_dict_resumes_the_sequence():
    opt = _optimizer(0.1)
    sched = CyclicWarmRestartLR(opt)
    _run(sched, opt, 30)
    state = sched.state_dict()
    opt2 = _optimizer(0.1)
    sched2 = CyclicWarmRestartLR(opt2)
    sched2.load_state_dict(state)  # what the runner does on resume, then restores the lr
    opt2.param_groups[0]['lr'] = opt.param_groups[0]['lr']
    assert _run(sched2, opt2, 30) == pytest.approx(PAPER_FIRST_60[30:])


@pytest.mark.parametrize('kwargs, match', [
    (dict(max_factor=0.5), 'max_factor=0.5'),
    (dict(cycle_len=0), 'cycle_len=0'),
    (dict(milestones=[101, 51]), 'strictly increasing'),
    (dict(gamma=0), 'gamma=0'),
    (dict(warmup_epochs=-1), 'warmup_epochs=-1'),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CyclicWarmRestartLR(_optimizer(), **kwargs)
