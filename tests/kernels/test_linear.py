"""The fused affine layer against the composition (matmul, then + bias)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
import nnet.nn.functional as F
from nnet.autograd.linalg import _SPLIT_MIN_ROWS
from nnet.kernels import Linear, use_fused
from nnet.testing import gradcheck, gradgradcheck

#: The fused primitives whose gradients this file checks (tests/fused/test_coverage.py).
FUSED_TESTED = (Linear,)


def _run(fused, x, w, b, g):
    ts = [nnet.Tensor(a.copy(), requires_grad=True) for a in (x, w, b) if a is not None]
    with use_fused(fused):
        y = F.linear(ts[0], ts[1], ts[2] if b is not None else None)
    assert (type(y.grad_fn) is Linear) == fused
    return y.numpy(), [t.numpy() for t in nnet.grad(y, ts, g)]


@given(
    lead=st.sampled_from([(), (1,), (5,), (2, 3)]),
    sizes=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    bias=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_matches_composition(lead, sizes, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, sizes[0])).astype(dtype)
    w = rng.standard_normal(sizes).astype(dtype)
    b = rng.standard_normal(sizes[1]).astype(dtype) if bias else None
    g = rng.standard_normal((*lead, sizes[1])).astype(dtype)
    x_before = x.copy()
    (y, grads), (y0, grads0) = _run(True, x, w, b, g), _run(False, x, w, b, g)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, y0, rtol=tol, atol=tol)
    for a, a0 in zip(grads, grads0, strict=True):
        assert a.dtype == a0.dtype
        np.testing.assert_allclose(a, a0, rtol=tol, atol=tol)
    np.testing.assert_array_equal(x, x_before)


def test_many_rows_take_the_slabbed_weight_gradient():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((_SPLIT_MIN_ROWS + 5, 3)), rng.standard_normal((3, 2)), None
    g = rng.standard_normal((_SPLIT_MIN_ROWS + 5, 2))
    (_, (gx, gw)), (_, (gx0, gw0)) = _run(True, x, w, b, g), _run(False, x, w, b, g)
    np.testing.assert_allclose(gw, gw0, rtol=1e-10)
    np.testing.assert_allclose(gx, gx0, rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_and_second_order(bias):
    rng = np.random.default_rng(1)
    x = nnet.Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    b = nnet.Tensor(rng.standard_normal(2), requires_grad=True)

    def f(x, w, b):
        y = F.linear(x, w, b if bias else None)
        assert type(y.grad_fn) is Linear
        return y * y  # second derivatives couple x and w

    assert gradcheck(f, x, w, b)
    assert gradgradcheck(f, x, w, b)
