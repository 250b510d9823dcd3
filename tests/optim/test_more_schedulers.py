"""LinearLR, SequentialLR and OneCycleLR: PyTorch's rates (and momenta), step by step."""

import numpy as np
import pytest

import nnet
from nnet.optim import lr_scheduler as S


def _run(make, steps, opt_kind="sgd"):
    w = nnet.ones(1, requires_grad=True)
    opt = nnet.optim.SGD([w], lr=0.1, momentum=0.9) if opt_kind == "sgd" else nnet.optim.Adam([w])
    sched = make(opt)
    rates, moms = [], []
    for _ in range(steps):
        group = opt.param_groups[0]
        rates.append(group["lr"])
        moms.append(group["betas"][0] if "betas" in group else group["momentum"])
        opt.step()
        sched.step()
    return rates, moms


def test_linear_warmup_by_hand():
    rates, _ = _run(lambda o: S.LinearLR(o, start_factor=0.25, total_iters=3), 5)
    np.testing.assert_allclose(rates, [0.025, 0.05, 0.075, 0.1, 0.1])


def test_sequential_restarts_the_second_schedule_at_the_milestone():
    def make(o):
        return S.SequentialLR(o, [S.LinearLR(o, 0.5, total_iters=2), S.StepLR(o, 1, 0.5)], [2])

    rates, _ = _run(make, 5)
    np.testing.assert_allclose(rates, [0.05, 0.075, 0.1, 0.05, 0.025])


def test_one_cycle_peaks_at_max_lr_and_ends_at_the_floor():
    rates, moms = _run(lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=10), 10)
    # (rising over steps 0-2, falling over 2-9)
    assert rates[0] == pytest.approx(1.0 / 25) and max(rates) == pytest.approx(1.0)
    assert rates[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85)


def test_one_cycle_errors():
    opt = nnet.optim.Adagrad([nnet.ones(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="no momentum or betas to cycle"):
        S.OneCycleLR(opt, max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="give total_steps"):
        S.OneCycleLR(opt, max_lr=1.0, cycle_momentum=False)


CASES = {
    "linear": (lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=4), "sgd"),
    "sequential": (
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, 0.2, total_iters=3), m.ExponentialLR(o, gamma=0.7)], milestones=[3]
        ),
        "sgd",
    ),
    "onecycle_cos": (lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=12), "sgd"),
    "onecycle_linear_3phase_adam": (
        lambda m, o: m.OneCycleLR(
            o,
            0.5,
            epochs=3,
            steps_per_epoch=5,
            pct_start=0.4,
            anneal_strategy="linear",
            three_phase=True,
        ),
        "adam",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    make, kind = CASES[name]
    steps = 12
    ours = _run(lambda o: make(S, o), steps, kind)
    p = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9) if kind == "sgd" else torch.optim.Adam([p])
    sched = make(torch.optim.lr_scheduler, opt)
    rates, moms = [], []
    for _ in range(steps):
        g = opt.param_groups[0]
        rates.append(g["lr"])
        moms.append(g["betas"][0] if "betas" in g else g["momentum"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(ours[0], rates, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours[1], moms, rtol=1e-12)
