"""nnet.nn.utils: gradient clipping and the L1 / L2 penalty terms."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet.nn.utils import clip_grad_norm_, clip_grad_value_, l1_penalty, l2_penalty

RNG = np.random.default_rng(3)


def with_grads(*arrays: np.ndarray) -> list[nnet.Tensor]:
    ps = [nnet.zeros(*a.shape, requires_grad=True) for a in arrays]
    for p, a in zip(ps, arrays, strict=True):
        p.grad = nnet.Tensor(a.astype(np.float32))
    return ps


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, np.inf])
def test_clip_grad_norm_scales_jointly(norm_type: float) -> None:
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=5)
    ps = with_grads(a, b)
    flat = np.concatenate([a.ravel(), b.ravel()])
    want = np.linalg.norm(flat, norm_type)
    total = clip_grad_norm_(ps, max_norm=0.5, norm_type=norm_type)
    assert float(total) == pytest.approx(want, rel=1e-5)
    scale = 0.5 / (want + 1e-6)
    np.testing.assert_allclose(ps[0].grad.data, a * scale, rtol=1e-5)
    np.testing.assert_allclose(ps[1].grad.data, b * scale, rtol=1e-5)
    clipped = np.concatenate([p.grad.data.ravel() for p in ps])
    assert np.linalg.norm(clipped, norm_type) <= 0.5 + 1e-5


def test_clip_grad_norm_leaves_small_gradients_alone() -> None:
    a = RNG.normal(size=4) * 1e-3
    (p,) = with_grads(a)
    clip_grad_norm_(p, max_norm=1.0)
    np.testing.assert_array_equal(p.grad.data, a.astype(np.float32))


def test_clip_grad_norm_nonfinite() -> None:
    ps = with_grads(np.array([1.0, np.nan]))
    with pytest.raises(RuntimeError, match=r"norm of order 2\.0 of the gradients is nan"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)


def test_clip_grad_value() -> None:
    a = RNG.normal(size=(4, 4)) * 3
    ps = with_grads(a)
    ps.append(nnet.zeros(2, requires_grad=True))  # no gradient: skipped
    clip_grad_value_(ps, 1.5)
    np.testing.assert_array_equal(ps[0].grad.data, np.clip(a, -1.5, 1.5).astype(np.float32))
    with pytest.raises(ValueError, match="clip_value must be >= 0, got -1"):
        clip_grad_value_(ps, -1)


def test_penalty_gradients_are_lambda_sign_and_lambda_w() -> None:
    w1 = nnet.Tensor(RNG.normal(size=(3, 2)).astype(np.float32), requires_grad=True)
    w2 = nnet.Tensor(np.array([0.0, -1.5, 2.0], np.float32), requires_grad=True)
    lam = 0.03
    l1 = l1_penalty([w1, w2], lam)
    assert float(l1) == pytest.approx(lam * (np.abs(w1.data).sum() + 3.5), rel=1e-6)
    l1.backward()
    np.testing.assert_allclose(w1.grad.data, lam * np.sign(w1.data), rtol=1e-6)
    np.testing.assert_allclose(w2.grad.data, lam * np.sign(w2.data), rtol=1e-6)

    w1.grad = w2.grad = None
    l2 = l2_penalty([w1, w2], lam)
    assert float(l2) == pytest.approx(lam / 2 * ((w1.data**2).sum() + 6.25), rel=1e-6)
    l2.backward()
    np.testing.assert_allclose(w1.grad.data, lam * w1.data, rtol=1e-6)
    np.testing.assert_allclose(w2.grad.data, lam * w2.data, rtol=1e-6)


def test_l2_penalty_with_sgd_equals_weight_decay() -> None:
    init = RNG.normal(size=5).astype(np.float32)
    a = nnet.Tensor(init.copy(), requires_grad=True)
    b = nnet.Tensor(init.copy(), requires_grad=True)
    opt_a = nnet.optim.SGD([a], lr=0.1, weight_decay=0.2)
    opt_b = nnet.optim.SGD([b], lr=0.1)
    for _ in range(3):
        opt_a.zero_grad(), opt_b.zero_grad()
        (a * a).sum().backward()
        ((b * b).sum() + l2_penalty(b, 0.2)).backward()
        opt_a.step(), opt_b.step()
    np.testing.assert_allclose(a.data, b.data, rtol=1e-6)
