"""Optimizer trajectories against the update rules of docs/optim.md, written out independently here.

Each run feeds the same gradient field ``g(w) = a * w + b + 0.1 * sin(3 w)`` to the optimizer and to
a plain-NumPy reference of the documented formula, in float64 (to 1e-12) and in float32 (to 1e-5).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnet
from nnet import optim

RNG = np.random.default_rng(1234)
A = RNG.uniform(0.5, 2.0, size=(3, 4))
B = RNG.normal(size=(3, 4))
W0 = RNG.normal(size=(3, 4))
STEPS = 12


def field(w: np.ndarray) -> np.ndarray:
    return A * w + B + 0.1 * np.sin(3 * w)


def run(make_opt, dtype) -> np.ndarray:
    w = nnet.Tensor(W0.astype(dtype), requires_grad=True)
    opt = make_opt([w])
    for _ in range(STEPS):
        w.grad = nnet.Tensor(field(w.data.astype(np.float64)).astype(dtype))
        opt.step()
    assert w.data.dtype == dtype
    return w.data


def ref_sgd(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False):
    w, b = W0.copy(), None
    for _ in range(STEPS):
        g = field(w) * (-1 if maximize else 1) + weight_decay * w
        if momentum:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        w = w - lr * g
    return w


def ref_adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    w, m, v, vmax = W0.copy(), 0.0, 0.0, 0.0
    for t in range(1, STEPS + 1):
        g = field(w)
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - betas[0] ** t)
        v_hat = (vmax if amsgrad else v) / (1 - betas[1] ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


def ref_rmsprop(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    w, v, mean, b = W0.copy(), 0.0, 0.0, 0.0
    for _ in range(STEPS):
        g = field(w) + weight_decay * w
        v = alpha * v + (1 - alpha) * g * g
        mean = alpha * mean + (1 - alpha) * g
        denom = np.sqrt(v - mean**2 if centered else v) + eps
        if momentum:
            b = momentum * b + g / denom
            w = w - lr * b
        else:
            w = w - lr * g / denom
    return w


def ref_adagrad(lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    w, s = W0.copy(), initial_accumulator_value
    for t in range(1, STEPS + 1):
        g = field(w) + weight_decay * w
        s = s + g * g
        w = w - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return w


CASES = [
    (lambda p: optim.SGD(p, lr=0.1), lambda: ref_sgd(0.1)),
    (lambda p: optim.SGD(p, lr=0.05, momentum=0.9), lambda: ref_sgd(0.05, 0.9)),
    (lambda p: optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3),
     lambda: ref_sgd(0.05, 0.8, dampening=0.3)),
    (lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda: ref_sgd(0.05, 0.9, nesterov=True, weight_decay=0.01)),
    (lambda p: optim.SGD(p, lr=0.01, momentum=0.5, maximize=True, weight_decay=0.1),
     lambda: ref_sgd(0.01, 0.5, maximize=True, weight_decay=0.1)),
    (lambda p: optim.Adam(p, lr=0.05), lambda: ref_adam(0.05)),
    (lambda p: optim.Adam(p, lr=0.05, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1),
     lambda: ref_adam(0.05, (0.8, 0.9), 1e-3, 0.1)),
    (lambda p: optim.Adam(p, lr=0.05, amsgrad=True), lambda: ref_adam(0.05, amsgrad=True)),
    (lambda p: optim.AdamW(p, lr=0.05), lambda: ref_adam(0.05, weight_decay=1e-2, decoupled=True)),
    (lambda p: optim.AdamW(p, lr=0.05, weight_decay=0.3, amsgrad=True),
     lambda: ref_adam(0.05, weight_decay=0.3, amsgrad=True, decoupled=True)),
    (lambda p: optim.RMSprop(p, lr=0.01), lambda: ref_rmsprop(0.01)),
    (lambda p: optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1),
     lambda: ref_rmsprop(0.01, 0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    (lambda p: optim.Adagrad(p, lr=0.1), lambda: ref_adagrad(0.1)),
    (lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.1,
                             initial_accumulator_value=0.5),
     lambda: ref_adagrad(0.1, 0.05, 0.1, 0.5)),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(CASES)))
def test_trajectory_matches_formula_float64(case: int) -> None:
    make, ref = CASES[case]
    np.testing.assert_allclose(run(make, np.float64), ref(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_trajectory_matches_formula_float32(case: int) -> None:
    make, ref = CASES[case]
    np.testing.assert_allclose(run(make, np.float32), ref(), rtol=1e-5, atol=1e-5)


def test_first_adam_step_is_lr_times_sign() -> None:
    w = nnet.tensor([3.0, -1.0, 0.5], requires_grad=True)
    opt = optim.Adam([w], lr=0.01)
    w.grad = nnet.tensor([10.0, -0.1, 2.0])
    opt.step()
    np.testing.assert_allclose(w.data, [2.99, -0.99, 0.49], rtol=1e-6)


def test_step_uses_autograd_gradients_and_records_nothing() -> None:
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)
    (w * w).sum().backward()
    before = w.data
    opt.step()
    assert w.data is before  # updated in place: views of the parameter stay valid
    np.testing.assert_array_equal(w.data, [0.5, 1.0])
    assert w.grad_fn is None and w.is_leaf


def test_parameters_without_gradient_are_skipped() -> None:
    a = nnet.tensor([1.0], requires_grad=True)
    b = nnet.tensor([1.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    (a * 2).sum().backward()
    opt.step()
    assert b.data[0] == 1.0 and b not in opt.state and opt.state[a]["step"] == 1


def test_param_groups_take_their_own_hyperparameters() -> None:
    a = nnet.tensor([1.0], requires_grad=True)
    b = nnet.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = nnet.tensor([1.0]), nnet.tensor([1.0])
    opt.step()
    assert math.isclose(a.data[0], 0.9, rel_tol=1e-6) and b.data[0] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.0


def test_zero_grad() -> None:
    w = nnet.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    w.grad = nnet.tensor([3.0])
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and w.grad.data[0] == 0.0
    opt.zero_grad()
    assert w.grad is None


def test_moment_buffers_keep_float32() -> None:
    w = nnet.zeros(2, 3, requires_grad=True)
    for opt in (optim.Adam([w], amsgrad=True), optim.RMSprop([w], momentum=0.9, centered=True),
                optim.Adagrad([w]), optim.SGD([w], momentum=0.9)):  # fmt: skip
        w.grad = nnet.ones(2, 3)
        opt.step()
        for name, value in opt.state[w].items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32, (type(opt).__name__, name)
        assert w.data.dtype == np.float32
