"""The fused softmax cross-entropy against the composition (log-softmax, one-hot product, sums)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nnet
import nnet.nn.functional as F
from nnet.kernels import SoftmaxCrossEntropy, use_fused
from nnet.testing import gradcheck, gradgradcheck

#: The fused primitives whose gradients this file checks (tests/fused/test_coverage.py).
FUSED_TESTED = (SoftmaxCrossEntropy,)


def _both(x, target, **kw):
    out = []
    for fused in (True, False):
        t = nnet.Tensor(x.copy(), requires_grad=True)
        with use_fused(fused):
            loss = F.cross_entropy(t, target, **kw)
        assert (type(loss.grad_fn) is SoftmaxCrossEntropy) == fused
        out.append((loss.numpy(), nnet.grad(loss, t)[0].numpy()))
    return out


@given(
    shape=st.sampled_from([(1, 2), (5, 3), (7, 10), (2, 3, 2, 4)]),
    reduction=st.sampled_from(["mean", "sum"]),
    smoothing=st.sampled_from([0.0, 0.1]),
    weighted=st.booleans(),
    ignore=st.booleans(),
    scale=st.sampled_from([1.0, 30.0]),
    seed=st.integers(0, 2**16),
)
def test_matches_composition(shape, reduction, smoothing, weighted, ignore, scale, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    target = rng.integers(0, shape[-1], shape[:-1])
    if ignore and target.size > 1:
        target.flat[0] = -100  # PyTorch's default ignore_index: no loss, no gradient
    weight = rng.uniform(0.5, 2.0, shape[-1]) if weighted else None
    x_before = x.copy()
    kw = {"reduction": reduction, "label_smoothing": smoothing, "weight": weight}
    (loss, dx), (loss0, dx0) = _both(x, target, **kw)
    np.testing.assert_allclose(loss, loss0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx0, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(x, x_before)


def test_extreme_logits_stay_finite_and_agree():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], np.float32)
    (loss, dx), (loss0, dx0) = _both(x, np.array([1, 1]))
    np.testing.assert_allclose(loss, 1e4, rtol=1e-6)  # first row: 2e4 nats, second: 0
    np.testing.assert_allclose(loss, loss0, rtol=1e-6)
    np.testing.assert_allclose(dx, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(dx, dx0, atol=1e-6)


def test_all_targets_ignored_gives_nan_as_the_composition():
    with np.errstate(invalid="ignore", divide="ignore"):
        (loss, _), (loss0, _) = _both(np.zeros((2, 3)), np.array([-100, -100]))
    assert np.isnan(loss) and np.isnan(loss0)


def test_gradcheck_and_second_order():
    x = nnet.Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    target = np.array([0, 3, 4, 1])

    def f(x):
        loss = F.cross_entropy(x, target, label_smoothing=0.1)
        assert type(loss.grad_fn) is SoftmaxCrossEntropy
        return loss

    assert gradcheck(f, x)
    assert gradgradcheck(f, x)


def test_other_targets_and_reductions_take_the_composition():
    x = nnet.Tensor(np.zeros((2, 3)), requires_grad=True)
    assert type(F.cross_entropy(x, np.array([0, 1])).grad_fn) is SoftmaxCrossEntropy
    assert type(F.cross_entropy(x, np.array([0, 1]), reduction="none").grad_fn) is not (
        SoftmaxCrossEntropy
    )
    assert type(F.cross_entropy(x, np.eye(3)[:2]).grad_fn) is not SoftmaxCrossEntropy
