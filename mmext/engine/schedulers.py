"""Learning-rate schedulers from the papers mmext implements.

:class:`CyclicWarmRestartLR` is the cyclic schedule of ESPNetv2 (Mehta et al., CVPR 2019,
arXiv:1811.11431, ImageNet training; official sacmehta/ESPNetv2 ``imagenet/LRSchedule.py``):
within a cycle of ``T`` epochs the learning rate falls linearly from ``eta_max`` to ``eta_min``,
then restarts at ``eta_max``; the whole range is multiplied by ``gamma`` at each milestone and the
cycle restarts there. The first epoch runs at ``eta_min`` (a warm-up: the official code notes that
starting at ``eta_max`` sometimes diverges). ImageNet recipe: base lr ``eta_min = 0.1``,
``eta_max = 5 * eta_min``, ``T = 5``, ``gamma = 0.5`` at epochs 51, 101, 131, ..., 281 of 300, so
epochs 0-60 read 0.1, then 0.5 0.4 0.3 0.2 0.1 repeated, and 0.25 0.2 0.15 0.1 0.05 from epoch 51.
"""
from typing import Sequence

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from ..registry import PARAM_SCHEDULERS

ESPNETV2_MILESTONES = (51, 101, 131, 161, 191, 221, 251, 281)


@PARAM_SCHEDULERS.register_module()
class CyclicWarmRestartLR(LRSchedulerMixin, _ParamScheduler):
    """Cyclic linear decay with warm restarts and a step-halved range (ESPNetv2).

    The optimizer's lr is ``eta_min``. At epoch ``t`` (counted from ``begin``), with ``m`` the
    number of milestones ``<= t`` and ``s`` the start of the current cycle run (the last milestone
    ``<= t``, else ``warmup_epochs``)::

        lr = gamma**m * eta_min                                  if t < warmup_epochs
        lr = gamma**m * eta_min * (max_factor - p * (max_factor - 1) / (T - 1)),
             p = (t - s) mod T                                   otherwise

    Args:
        optimizer: wrapped optimizer (or optim wrapper).
        max_factor (float): ``eta_max / eta_min`` (paper: 0.5 / 0.1 = 5). Must be >= 1.
        cycle_len (int): T, epochs per cycle (paper: 5).
        milestones (Sequence[int]): epochs at which the range is multiplied by ``gamma`` and a
            new cycle starts (paper: 51, 101, 131, 161, 191, 221, 251, 281).
        gamma (float): range factor at each milestone (paper: 0.5, "halves").
        warmup_epochs (int): epochs at ``eta_min`` before the first cycle (official: 1).
        begin, end (int): step range in which the scheduler acts (mmengine convention).
        last_step (int): for resuming. Default -1.
        by_epoch (bool): step per epoch (the paper). Converted iteration-based schedulers
            (``convert_to_iter_based=True``) keep the rate constant within each epoch.
        epoch_length (int): iterations per epoch when iteration-based; set by the conversion.
        verbose (bool): print each update.
    """

    def __init__(self,
                 optimizer,
                 max_factor: float = 5.0,
                 cycle_len: int = 5,
                 milestones: Sequence[int] = ESPNETV2_MILESTONES,
                 gamma: float = 0.5,
                 warmup_epochs: int = 1,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 epoch_length: int = 1,
                 verbose: bool = False):
        if max_factor < 1:
            raise ValueError(f'CyclicWarmRestartLR: max_factor={max_factor} must be >= 1 '
                             '(eta_max = max_factor * the optimizer lr)')
        if int(cycle_len) != cycle_len or cycle_len < 1:
            raise ValueError(f'CyclicWarmRestartLR: cycle_len={cycle_len} must be an int >= 1')
        milestones = [int(m) for m in milestones]
        if any(b <= a for a, b in zip(milestones, milestones[1:])) or any(
                m < 0 for m in milestones):
            raise ValueError(f'CyclicWarmRestartLR: milestones={milestones} must be '
                             'non-negative and strictly increasing')
        if not 0 < gamma <= 1:
            raise ValueError(f'CyclicWarmRestartLR: gamma={gamma} must be in (0, 1]')
        if warmup_epochs < 0:
            raise ValueError(f'CyclicWarmRestartLR: warmup_epochs={warmup_epochs} must be >= 0')
        if epoch_length < 1:
            raise ValueError(f'CyclicWarmRestartLR: epoch_length={epoch_length} must be >= 1')
        self.max_factor = float(max_factor)
        self.cycle_len = int(cycle_len)
        self.milestones = milestones
        self.gamma = gamma
        self.warmup_epochs = int(warmup_epochs)
        self.epoch_length = int(epoch_length)
        super().__init__(optimizer, begin=begin, end=end, last_step=last_step,
                         by_epoch=by_epoch, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin=0, end=INF, by_epoch=True, epoch_length=None,
                              **kwargs):
        """Iteration-based instance of an epoch-based config (``convert_to_iter_based``)."""
        if not by_epoch:
            raise ValueError('CyclicWarmRestartLR: only by_epoch=True configs can be converted '
                             'to iteration-based')
        if not epoch_length or epoch_length < 1:
            raise ValueError(f'CyclicWarmRestartLR: epoch_length={epoch_length} must be >= 1')
        begin = int(begin * epoch_length)
        if end != INF:
            end = int(end * epoch_length)
        return cls(*args, begin=begin, end=end, by_epoch=False, epoch_length=epoch_length,
                   **kwargs)

    def factor(self, epoch: int) -> float:
        """Learning rate at ``epoch`` (from ``begin``) as a multiple of the optimizer lr."""
        passed = [m for m in self.milestones if m <= epoch]
        scale = self.gamma**len(passed)
        if epoch < self.warmup_epochs:
            return scale
        start = max(passed[-1], self.warmup_epochs) if passed else self.warmup_epochs
        pos = (epoch - start) % self.cycle_len
        step = (self.max_factor - 1) / (self.cycle_len - 1) if self.cycle_len > 1 else 0.0
        return scale * (self.max_factor - pos * step)

    def _get_value(self):
        f = self.factor(self.last_step // self.epoch_length)
        return [base * f for base in self.base_values]
