"""Optional: the same trajectories from PyTorch's optimizers and schedulers (float32)."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import optim

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
W0 = RNG.normal(size=(4, 5)).astype(np.float32)
A = RNG.uniform(0.5, 2.0, size=(4, 5)).astype(np.float32)


def gradient(w: np.ndarray) -> np.ndarray:
    return (A * w + np.sin(3 * w)).astype(np.float32)


CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
]


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS)
def test_matches_torch(name: str, kwargs: dict) -> None:
    w = nnet.Tensor(W0.copy(), requires_grad=True)
    ours = getattr(optim, name)([w], **kwargs)
    tw = torch.tensor(W0.copy(), requires_grad=True)
    theirs = getattr(torch.optim, name)([tw], **kwargs)
    for _ in range(30):
        w.grad = nnet.Tensor(gradient(w.data))
        ours.step()
        tw.grad = torch.from_numpy(gradient(tw.detach().numpy()))
        theirs.step()
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [c for c in CONFIGS if c[0] in ("SGD", "Adam", "AdamW")],
)
def test_several_parameters_updated_together_match_torch(name: str, kwargs: dict) -> None:
    """Several parameters of different shapes, one of them without a gradient (frozen): the ones
    with gradients go through the flat update (nnet/optim/flat.py), which must match PyTorch too."""
    rng = np.random.default_rng(11)
    shapes = [(4, 5), (5,), (3, 2, 2), (7,)]
    starts = [rng.normal(size=s).astype(np.float32) for s in shapes]
    ours = [nnet.Tensor(w.copy(), requires_grad=True) for w in starts]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in starts]
    ours_opt = getattr(optim, name)(ours, **kwargs)
    theirs_opt = getattr(torch.optim, name)(theirs, **kwargs)
    for _ in range(30):
        for i, (w, tw) in enumerate(zip(ours, theirs, strict=True)):
            if i == 1:
                continue  # frozen: never a gradient
            w.grad = nnet.Tensor(np.sin(3 * w.data) + w.data)
            tw.grad = torch.from_numpy(np.sin(3 * tw.detach().numpy()) + tw.detach().numpy())
        ours_opt.step()
        theirs_opt.step()
    assert ours_opt._flats  # the flat path ran
    for w, tw in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("StepLR", dict(step_size=3, gamma=0.5)),
        ("MultiStepLR", dict(milestones=[2, 5], gamma=0.3)),
        ("ExponentialLR", dict(gamma=0.9)),
        ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
    ],
)
def test_schedules_match_torch(name: str, kwargs: dict) -> None:
    ours_opt = optim.SGD([nnet.zeros(1, requires_grad=True)], lr=0.5)
    ours = getattr(optim.lr_scheduler, name)(ours_opt, **kwargs)
    theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **kwargs)
    for _ in range(10):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        ours_opt.step(), theirs_opt.step()
        ours.step(), theirs.step()


def test_plateau_matches_torch() -> None:
    metrics = [1.0, 0.9, 0.9, 0.95, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7]
    ours_opt = optim.SGD([nnet.zeros(1, requires_grad=True)], lr=0.5)
    ours = optim.lr_scheduler.ReduceLROnPlateau(ours_opt, patience=1, cooldown=1, factor=0.5)
    theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, patience=1, cooldown=1,
                                                         factor=0.5)  # fmt: skip
    for m in metrics:
        ours.step(m)
        theirs.step(m)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr())
