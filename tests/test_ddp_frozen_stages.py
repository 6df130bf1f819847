"""Every mmext backbone with ``frozen_stages`` trains under DDP (2 CPU processes, gloo).

mmengine's Runner wraps the model in DDP (``find_unused_parameters=False`` by default) when it
is built and only then calls ``model.train()``. A backbone that freezes its stages in
``train()`` but not in ``__init__`` hands DDP parameters that never get a gradient, and the
second iteration fails with "Expected to have finished reduction in the prior iteration". The
test replays that order: build, wrap, ``train()``, two optimiser steps on each process.
"""
import inspect
import json
import traceback

import pytest
import torch

import mmext.models.backbones as mmext_backbones

# the smallest variant of each backbone, its deepest allowed frozen_stages but one (so that
# something is still trained), and an input size its strides accept
BACKBONES = {
    'SpineNet': (dict(arch='49S', out_levels=(3, 4), frozen_stages=1), 128),
    'MixNet': (dict(arch='S', out_indices=(2, 3), frozen_stages=2), 64),
    'ESPNetv2': (dict(widen_factor=0.5, frozen_stages=3), 64),
    'CLCNet': (dict(arch='A', frozen_stages=2), 64),
}
ITERS = 2
WORLD_SIZE = 2


def _step_backbones(rank, init_file, out_file):
    """One process of the gloo group: per backbone, build -> DDP -> train() -> ITERS steps."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=WORLD_SIZE)
    results = {}
    for name, (kwargs, size) in BACKBONES.items():
        torch.manual_seed(0)  # same initial weights on both processes, as DDP expects
        try:
            model = getattr(mmext_backbones, name)(**kwargs)
            # mmengine's default: unused parameters are an error, not searched for
            ddp = DistributedDataParallel(model, find_unused_parameters=False,
                                          process_group=dist.new_group(backend='gloo'))
            ddp.train()  # the train loop calls train() after wrapping
            optim = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.01)
            gen = torch.Generator().manual_seed(rank)
            for _ in range(ITERS):
                outs = ddp(torch.rand(2, 3, size, size, generator=gen))
                loss = sum(o.float().mean() for o in outs)
                optim.zero_grad()
                loss.backward()
                optim.step()
            results[name] = dict(ok=True, frozen_params=sum(
                p.numel() for m in model.frozen_modules() for p in m.parameters()))
        except Exception:  # noqa: BLE001 -- reported per backbone to the test
            results[name] = dict(ok=False, error=traceback.format_exc(limit=3))
    if rank == 0:
        with open(out_file, 'w') as f:
            json.dump(results, f)
    dist.destroy_process_group()


@pytest.fixture(scope='module')
def ddp_results(tmp_path_factory):
    """Runs every backbone in one 2-process group (one spawn: starting processes dominates)."""
    import torch.multiprocessing as mp
    tmp = tmp_path_factory.mktemp('ddp')
    out_file = str(tmp / 'results.json')
    ctx = mp.start_processes(_step_backbones, args=(str(tmp / 'init'), out_file),
                             nprocs=WORLD_SIZE, join=False, start_method='spawn')
    for _ in range(300):  # 300 s at most: a hung collective must not hang the suite
        if ctx.join(timeout=1):
            break
    else:
        for p in ctx.processes:
            p.kill()
        pytest.fail('the DDP processes did not finish in 300 s')
    with open(out_file) as f:
        return json.load(f)


def test_every_mmext_backbone_with_frozen_stages_is_covered():
    with_frozen = {n for n in mmext_backbones.__all__
                   if 'frozen_stages' in inspect.signature(getattr(mmext_backbones, n)).parameters}
    assert with_frozen == set(BACKBONES)


@pytest.mark.slow  # one 2-process spawn for all backbones: ~40 s on 2 busy cores
@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_frozen_stages_train_under_ddp(ddp_results, name):
    res = ddp_results[name]
    assert res['ok'], f'{name} under DDP with {BACKBONES[name][0]}:\n{res["error"]}'
    assert res['frozen_params'] > 0


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_frozen_stages_are_frozen_when_built(name):
    """What DDP sees at wrap time (the fast guard of the DDP test above): no gradient is asked
    of a frozen parameter before train()."""
    kwargs, _ = BACKBONES[name]
    model = getattr(mmext_backbones, name)(**kwargs)
    frozen = {id(p) for m in model.frozen_modules() for p in m.parameters()}
    assert frozen
    assert all(not p.requires_grad for p in model.parameters() if id(p) in frozen)
    assert any(p.requires_grad for p in model.parameters() if id(p) not in frozen)
    assert not any(m.training for m in model.frozen_modules())
