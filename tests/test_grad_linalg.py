"""matmul with NumPy's semantics: 1-D operands, batches, broadcast batch axes, empty axes; forward
against NumPy, gradients first and second order, the seed's Linear derivation, error messages."""

from __future__ import annotations

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P
from nnet.testing.strategies import broadcastable_shapes

PRIMITIVES_TESTED = {P.MatMul}

sides = st.integers(0, 3)


@st.composite
def matmul_shapes(draw):
    """Operand shapes that NumPy's matmul accepts: each 1-D, 2-D or batched, with broadcast batch
    axes, and any of n, k, m possibly 0."""
    n, k, m = draw(sides), draw(sides), draw(sides)
    batch_a, batch_b = draw(broadcastable_shapes(num_shapes=2, max_dims=2, min_side=1, max_side=3))
    a_kind = draw(st.sampled_from(["vector", "matrix"]))
    b_kind = draw(st.sampled_from(["vector", "matrix"]))
    sa = (k,) if a_kind == "vector" else (*batch_a, n, k)
    sb = (k,) if b_kind == "vector" else (*batch_b, k, m)
    return sa, sb


@given(data=st.data(), seed=seeds)
def test_matmul(data, seed):
    sa, sb = data.draw(matmul_shapes())
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    expected = np.matmul(a, b)
    out = nnet.tensor(a) @ nnet.tensor(b)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nnet.matmul(a, nnet.tensor(b)).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose((a @ nnet.tensor(b)).numpy(), expected, rtol=1e-12)  # __rmatmul__
    check_grad(nnet.matmul, leaf(a), leaf(b), primitive=P.MatMul, seed=seed, second_order=True)
    check_grad(lambda t: t @ b, leaf(a), primitive=P.MatMul, seed=seed)
    check_grad(lambda t: a @ t, leaf(b), primitive=P.MatMul, seed=seed)


def test_matmul_keeps_float32():
    a = nnet.ones((2, 3))
    assert (a @ nnet.ones(3)).dtype == np.float32


def test_linear_layer_gradients_match_the_seed_derivation():
    """dL/dW = X^T G, dL/dX = G W^T, dL/db = sum_i G_ij (docs/derivations.md, "matmul")."""
    rng = np.random.default_rng(0)
    x = nnet.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w = nnet.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = nnet.tensor(rng.standard_normal(4), requires_grad=True)
    g = rng.standard_normal((5, 4))
    (x @ w + b).backward(nnet.tensor(g))
    np.testing.assert_allclose(w.grad.numpy(), x.numpy().T @ g)
    np.testing.assert_allclose(x.grad.numpy(), g @ w.numpy().T)
    np.testing.assert_allclose(b.grad.numpy(), g.sum(axis=0))


def test_matmul_errors_name_the_shapes():
    with pytest.raises(
        ValueError, match=r"^matmul: shapes \(3, 4\) and \(5, 2\) do not align: 4 != 5$"
    ):
        nnet.ones((3, 4)) @ nnet.ones((5, 2))
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(4,\) do not align: 3 != 4"):
        nnet.matmul(nnet.ones(3), nnet.ones(4))
    with pytest.raises(
        ValueError, match=r"matmul: batch dimensions of \(2, 3, 4\) and \(3, 4, 5\)"
    ):
        nnet.ones((2, 3, 4)) @ nnet.ones((3, 4, 5))
    with pytest.raises(ValueError, match=r"at least one dimension.*use \*"):
        nnet.matmul(nnet.tensor(2.0), nnet.ones(3))
