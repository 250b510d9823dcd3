"""Learning-rate schedules against their closed forms, and state dicts that resume exactly."""

from __future__ import annotations

import math

import pytest

import nnet
from nnet import optim
from nnet.optim import lr_scheduler as sch


def make_opt(lr: float = 1.0) -> optim.SGD:
    return optim.SGD([nnet.zeros(1, requires_grad=True)], lr=lr)


def lrs(sched, opt, epochs: int = 8) -> list[float]:
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        sched.step()
    return out


def test_step_lr() -> None:
    opt = make_opt(0.1)
    got = lrs(sch.StepLR(opt, step_size=3, gamma=0.5), opt)
    assert got == pytest.approx([0.1 * 0.5 ** (e // 3) for e in range(8)])


def test_multistep_lr() -> None:
    opt = make_opt()
    got = lrs(sch.MultiStepLR(opt, milestones=[5, 2], gamma=0.1), opt)
    assert got == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01])


def test_exponential_lr() -> None:
    opt = make_opt(2.0)
    assert lrs(sch.ExponentialLR(opt, gamma=0.9), opt) == pytest.approx(
        [2.0 * 0.9**e for e in range(8)]
    )


def test_cosine_annealing_lr() -> None:
    opt = make_opt(1.0)
    got = lrs(sch.CosineAnnealingLR(opt, T_max=6, eta_min=0.1), opt, 7)
    want = [0.1 + 0.9 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(7)]
    assert got == pytest.approx(want)
    assert got[-1] == pytest.approx(0.1)


def test_lambda_lr_per_group() -> None:
    a, b = nnet.zeros(1, requires_grad=True), nnet.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=1.0)
    sched = sch.LambdaLR(opt, [lambda e: 1 / (e + 1), lambda e: 0.5**e])
    sched.step()
    sched.step()
    assert sched.get_last_lr() == pytest.approx([1 / 3, 0.125])
    with pytest.raises(ValueError, match="expected 2 lr_lambda"):
        sch.LambdaLR(opt, [lambda e: 1.0])


def test_reduce_on_plateau_min_and_max() -> None:
    opt = make_opt()
    s = sch.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    seen = []
    for loss in [5, 4, 4, 4, 4, 4, 4, 4, 4, 4]:
        s.step(loss)
        seen.append(opt.param_groups[0]["lr"])
    # three bad epochs (> patience) cut the rate; the cooldown epoch does not count as bad
    assert seen == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    for _ in range(10):
        s.step(4)
    assert s.get_last_lr() == [0.2]  # never below min_lr
    opt2 = make_opt()
    s2 = sch.ReduceLROnPlateau(opt2, mode="max", patience=0, threshold=0.1, threshold_mode="abs")
    for acc in [0.5, 0.55, 0.7]:
        s2.step(acc)
    assert s2.get_last_lr() == pytest.approx([0.1])  # 0.55 is not 0.1 better than 0.5


def test_reduce_on_plateau_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'up'"):
        sch.ReduceLROnPlateau(make_opt(), mode="up")
    with pytest.raises(ValueError, match="factor must be in"):
        sch.ReduceLROnPlateau(make_opt(), factor=1.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda o: sch.StepLR(o, 2, 0.5),
        lambda o: sch.MultiStepLR(o, [1, 3]),
        lambda o: sch.ExponentialLR(o, 0.8),
        lambda o: sch.CosineAnnealingLR(o, 5),
        lambda o: sch.LambdaLR(o, lambda e: 1 / (1 + e)),
    ],
)
def test_scheduler_resumes_from_state_dict(make) -> None:
    opt = make_opt()
    full = lrs(make(opt), opt, 7)
    opt2 = make_opt()
    s2 = make(opt2)
    first = lrs(s2, opt2, 3)
    state = s2.state_dict()
    assert all(isinstance(k, str) for k in state)
    opt3 = make_opt()
    opt3.load_state_dict(opt2.state_dict())
    s3 = make(opt3)
    s3.load_state_dict(state)
    assert first + lrs(s3, opt3, 4) == full


def test_plateau_resumes_from_state_dict() -> None:
    metrics = [3, 2, 2, 2, 2, 1, 1, 1, 1, 1]
    opt = make_opt()
    s = sch.ReduceLROnPlateau(opt, patience=1)
    for m in metrics:
        s.step(m)
    opt2 = make_opt()
    s2 = sch.ReduceLROnPlateau(opt2, patience=1)
    for m in metrics[:4]:
        s2.step(m)
    opt3 = make_opt()
    opt3.load_state_dict(opt2.state_dict())
    s3 = sch.ReduceLROnPlateau(opt3, patience=1)
    s3.load_state_dict(s2.state_dict())
    for m in metrics[4:]:
        s3.step(m)
    assert s3.get_last_lr() == s.get_last_lr() and s3.best == s.best
