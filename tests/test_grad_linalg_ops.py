"""nnet.linalg (inv, solve, det, norm): forward against NumPy and PyTorch, gradients (first and second
order) over random batches of well-conditioned matrices, the zero-norm rule, NumPy dispatch, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P
from nnet.testing.strategies import shapes

PRIMITIVES_TESTED = {P.Inv, P.Solve, P.Det}

BATCH = shapes(min_dims=0, max_dims=2, min_side=0, max_side=2)


@st.composite
def well_conditioned(draw, n=None):
    """A batch of n x n matrices: the identity times n plus entries in [-0.5, 0.5] (diagonally dominant,
    so invertible with a condition number of a few)."""
    batch = draw(BATCH)
    n = draw(st.integers(1, 3)) if n is None else n
    noise = draw(arrays(batch + (n, n), "small")) * 0.4
    return noise + n * np.eye(n)


@given(a=well_conditioned(), seed=seeds)
def test_inv(a, seed):
    np.testing.assert_allclose(
        nnet.linalg.inv(nnet.tensor(a)).numpy(), np.linalg.inv(a), rtol=1e-12
    )
    check_grad(nnet.linalg.inv, leaf(a), primitive=P.Inv, seed=seed, second_order=True)


@given(data=st.data(), vector=st.booleans(), seed=seeds)
def test_solve(data, vector, seed):
    a = data.draw(well_conditioned())
    n = a.shape[-1]
    b = data.draw(arrays((n,) if vector else a.shape[:-2] + (n, data.draw(st.integers(0, 2)))))
    want = np.linalg.solve(a, b)
    np.testing.assert_allclose(nnet.linalg.solve(nnet.tensor(a), nnet.tensor(b)).numpy(), want,
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    check_grad(nnet.linalg.solve, leaf(a), leaf(b), primitive=P.Solve, seed=seed,
               second_order=True)  # fmt: skip


@given(a=well_conditioned(), seed=seeds)
def test_det(a, seed):
    np.testing.assert_allclose(
        nnet.linalg.det(nnet.tensor(a)).numpy(), np.linalg.det(a), rtol=1e-12
    )
    check_grad(nnet.linalg.det, leaf(a), primitive=P.Det, seed=seed, second_order=True)


VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3]
MATRIX_ORDS = ["fro", 1, -1, np.inf, -np.inf]


@given(data=st.data(), keepdim=st.booleans(), seed=seeds)
def test_vector_and_matrix_norms(data, keepdim, seed):
    shape = data.draw(shapes(min_dims=2, max_dims=3, min_side=1, max_side=3))
    a = data.draw(arrays(shape, "positive", unique=True))  # no ties in |a| for the max/min norms
    ord = data.draw(st.sampled_from(VECTOR_ORDS))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    want = np.linalg.norm(a, ord, dim, keepdim)
    out = nnet.linalg.norm(nnet.tensor(a), ord, dim, keepdim)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    check_grad(lambda t: nnet.linalg.norm(t, ord, dim, keepdim), leaf(a), primitive=P.Abs
               if ord not in (None, 2) else P.Sqrt, seed=seed, second_order=True)  # fmt: skip
    mord = data.draw(st.sampled_from(MATRIX_ORDS))
    axes = (0, -1)
    want = np.linalg.norm(a, mord, axes, keepdim)
    np.testing.assert_allclose(nnet.linalg.norm(nnet.tensor(a), mord, axes, keepdim).numpy(), want,
                               rtol=1e-12)  # fmt: skip
    check_grad(lambda t: nnet.linalg.norm(t, mord, axes, keepdims=keepdim), leaf(a),
               primitive=P.Sqrt if mord == "fro" else P.Abs, seed=seed, second_order=True)  # fmt: skip


def test_norm_defaults_and_zero():
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(nnet.linalg.norm(nnet.tensor(a)).item(), np.linalg.norm(a))
    np.testing.assert_allclose(nnet.linalg.norm(nnet.tensor(a), 1).item(), np.linalg.norm(a, 1))
    x = nnet.tensor(np.zeros(3), requires_grad=True)
    y = nnet.linalg.norm(x)
    y.backward()
    assert y.item() == 0.0
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3))  # as PyTorch, not NaN


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    b = rng.standard_normal((2, 3, 2))
    x, y = nnet.tensor(a, requires_grad=True), nnet.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ours = [nnet.linalg.inv(x), nnet.linalg.solve(x, y), nnet.linalg.det(x),
            nnet.linalg.norm(x, dim=(1, 2)), nnet.linalg.norm(x, 1, (1, 2)),
            nnet.linalg.norm(x, np.inf, 2), nnet.linalg.norm(x, 3, 1)]  # fmt: skip
    theirs = [torch.linalg.inv(tx), torch.linalg.solve(tx, ty), torch.linalg.det(tx),
              torch.linalg.norm(tx, dim=(1, 2)), torch.linalg.norm(tx, 1, (1, 2)),
              torch.linalg.norm(tx, np.inf, 2), torch.linalg.norm(tx, 3, 1)]  # fmt: skip
    weights = [rng.standard_normal(o.shape) for o in ours]
    loss = sum((o * w).sum() for o, w in zip(ours, weights, strict=True))
    tloss = sum((o * torch.tensor(w)).sum() for o, w in zip(theirs, weights, strict=True))
    gx, gy = nnet.grad(loss, [x, y], create_graph=True)
    tgx, tgy = torch.autograd.grad(tloss, [tx, ty], create_graph=True)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gy.numpy(), tgy.detach().numpy(), rtol=1e-10)
    (ggx,) = nnet.grad((gx * gx).sum() + gy.sum(), [x])
    (tggx,) = torch.autograd.grad((tgx * tgx).sum() + tgy.sum(), [tx])
    np.testing.assert_allclose(ggx.numpy(), tggx.numpy(), rtol=1e-9)


def test_numpy_linalg_dispatch():
    a = nnet.tensor(np.array([[2.0, 1.0], [1.0, 3.0]]), requires_grad=True)
    for ours, want in [(np.linalg.inv(a), np.linalg.inv(a.data)), (np.linalg.det(a), 5.0),
                       (np.linalg.solve(a, np.ones(2)), np.linalg.solve(a.data, np.ones(2))),
                       (np.linalg.norm(a), np.linalg.norm(a.data)),
                       (np.linalg.norm(a, 1, axis=0), np.linalg.norm(a.data, 1, axis=0))]:  # fmt: skip
        assert isinstance(ours, nnet.Tensor) and ours.requires_grad
        np.testing.assert_allclose(ours.numpy(), want, rtol=1e-12)


def test_bad_input_names_the_op_and_the_problem():
    with pytest.raises(ValueError, match=r"inv: needs square matrices .* got shape \(2, 3\)"):
        nnet.linalg.inv(nnet.ones((2, 3)))
    with pytest.raises(np.linalg.LinAlgError, match=r"inv: a matrix of the .* is singular"):
        nnet.linalg.inv(nnet.ones((2, 2)))
    with pytest.raises(np.linalg.LinAlgError, match=r"solve: a matrix .* is singular"):
        nnet.linalg.solve(nnet.zeros((2, 2)), nnet.ones(2))
    with pytest.raises(ValueError, match=r"solve: b of shape \(3,\) does not match A"):
        nnet.linalg.solve(nnet.eye(2), nnet.ones(3))
    x = nnet.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(np.linalg.LinAlgError, match="det: the gradient at a singular matrix"):
        nnet.linalg.det(x).backward()
    with pytest.raises(ValueError, match="norm: matrix ord 'nuc' is not supported"):
        nnet.linalg.norm(nnet.eye(2), "nuc")
    with pytest.raises(ValueError, match=r"norm: vector ord 0\.5 is not supported"):
        nnet.linalg.norm(nnet.ones(2), 0.5)
    with pytest.raises(ValueError, match="norm: dim"):
        nnet.linalg.norm(nnet.ones(2), dim=(0, 0))
