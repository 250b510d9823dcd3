"""Reductions and scans beyond the seed's (std, ...): forward against NumPy and PyTorch, gradients
(first and second order) over random shapes, axes and keepdims, PyTorch's argument spellings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradtest import REAL, arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_grad_reduction import shape_and_axis

import nnet
from nnet.autograd import ops as P

PRIMITIVES_TESTED = {P.Cumsum, P.Cumprod, P.Prod}


@given(data=st.data(), keepdims=st.booleans(), ddof=st.sampled_from([0, 1]))
def test_std_forward_matches_numpy(data, keepdims, ddof):
    shape, axis = data.draw(shape_and_axis(nonempty_reduction=True, min_count=1 + ddof))
    a = data.draw(arrays(shape))
    out = nnet.std(nnet.tensor(a), axis=axis, ddof=ddof, keepdims=keepdims)
    expected = np.std(a, axis=axis, ddof=ddof, keepdims=keepdims)
    assert out.shape == np.shape(expected) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


@given(data=st.data(), keepdims=st.booleans(), ddof=st.sampled_from([0, 1]), seed=seeds)
def test_std_grad(data, keepdims, ddof, seed):
    # two distinct values per slice at least: the gradient is NaN where the variance is 0
    shape, axis = data.draw(shape_and_axis(3, nonempty_reduction=True, min_count=2))
    a = data.draw(arrays(shape, "off_kinks", unique=True))
    check_grad(
        lambda t: t.std(axis=axis, ddof=ddof, keepdims=keepdims), leaf(a), primitive=P.Sqrt,
        seed=seed, second_order=True,
    )  # fmt: skip


def test_std_pytorch_spellings_and_torch_values():
    a = np.random.default_rng(1).standard_normal((2, 3, 4))
    x = nnet.tensor(a)
    np.testing.assert_array_equal(
        x.std(dim=1, keepdim=True, correction=1).numpy(), nnet.std(x, 1, 1, True).numpy()
    )
    np.testing.assert_allclose(nnet.std(x, dim=(0, 2), unbiased=True).numpy(),
                               np.std(a, axis=(0, 2), ddof=1))  # fmt: skip
    with pytest.raises(TypeError, match="std: unexpected argument"):
        x.std(dims=1)
    with pytest.raises(ValueError, match="std: axis 3 is out of range"):
        x.std(axis=3)
    torch = pytest.importorskip("torch")
    t = torch.tensor(a, requires_grad=True)
    ours = nnet.tensor(a, requires_grad=True)
    ours.std(dim=2, correction=1).sum().backward()
    t.std(dim=2, correction=1).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), t.grad.numpy(), rtol=1e-10)


def test_std_of_a_constant_slice_is_zero_with_a_zero_gradient_as_pytorch():
    x = nnet.tensor(np.ones((2, 3)), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = x.std(axis=1)
        s.sum().backward()
    np.testing.assert_array_equal(s.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))


def test_std_with_too_few_elements_is_nan():
    x = nnet.tensor(np.ones((3, 1)), requires_grad=True)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = nnet.std(x, axis=1, ddof=1)
    assert np.isnan(s.numpy()).all()


# -- scans and prod ---------------------------------------------------------------------------------
@st.composite
def shape_and_one_axis(draw, max_side=3):
    shape = draw(shapes_strategy(max_side))
    axis = (
        draw(st.integers(-len(shape), len(shape) - 1)) if shape else draw(st.sampled_from([None]))
    )
    return shape, axis


def shapes_strategy(max_side):
    return hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side)


def with_zeros(shape):
    """Reals with many exact zeros: cumprod's and prod's gradients must stay exact there."""
    return hnp.arrays(np.float64, shape, elements=st.one_of(st.just(0.0), REAL))


# second derivatives of products are exact away from zeros (derivations.md#cumprod)
NEAR_ONE = st.one_of(st.floats(-1.5, -0.5), st.floats(0.5, 1.5))
SCANS = {"cumsum": (np.cumsum, P.Cumsum, "real"), "cumprod": (np.cumprod, P.Cumprod, "nonzero")}


@pytest.mark.parametrize("name", SCANS)
@given(data=st.data(), seed=seeds)
def test_scan_forward_and_grad(name, data, seed):
    reference, primitive, domain = SCANS[name]
    shape, axis = data.draw(shape_and_one_axis())
    a = data.draw(arrays(shape, domain))
    out = getattr(nnet, name)(nnet.tensor(a), axis)
    np.testing.assert_allclose(out.numpy(), reference(a, axis), rtol=1e-12, atol=1e-300)
    assert out.dtype == np.float64
    fn = (lambda t: getattr(t, name)(dim=axis)) if axis is not None else getattr(nnet, name)
    check_grad(fn, leaf(a), primitive=primitive, seed=seed, second_order=True)


@pytest.mark.parametrize("name", ["cumprod", "prod"])
@given(data=st.data(), seed=seeds)
def test_products_first_order_gradient_is_exact_at_zeros(name, data, seed):
    shape, axis = data.draw(shape_and_one_axis(max_side=4))
    a = data.draw(with_zeros(shape))
    primitive = P.Prod if name == "prod" else P.Cumprod
    check_grad(lambda t: getattr(nnet, name)(t, axis), leaf(a), primitive=primitive, seed=seed)


@given(data=st.data(), keepdims=st.booleans(), seed=seeds)
def test_prod_forward_and_grad(data, keepdims, seed):
    shape, axis = data.draw(shape_and_axis(3))
    # magnitudes in [0.5, 1.5]: products of up to 27 factors stay near 1, where central
    # differences of the second derivative keep their absolute accuracy
    a = data.draw(hnp.arrays(np.float64, shape, elements=NEAR_ONE))
    out = nnet.prod(nnet.tensor(a), axis=axis, keepdims=keepdims)
    expected = np.prod(a, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-300)
    check_grad(lambda t: t.prod(axis=axis, keepdims=keepdims), leaf(a), primitive=P.Prod,
               seed=seed, second_order=True)  # fmt: skip


def test_products_against_torch_with_zeros():
    torch = pytest.importorskip("torch")
    a = np.array([[1.5, 2.0, 0.0, 3.0, 0.0], [2.0, 0.0, -1.0, 5.0, 2.0], [1.0, 2.0, 3.0, 4.0, 0.5]])
    g = np.random.default_rng(3).standard_normal(a.shape)
    for ours, theirs in [(lambda t: t.cumprod(dim=1), lambda t: torch.cumprod(t, dim=1)),
                         (lambda t: t.prod(dim=1), lambda t: torch.prod(t, dim=1)),
                         (lambda t: t.cumsum(dim=0), lambda t: torch.cumsum(t, dim=0))]:  # fmt: skip
        x, tx = nnet.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        y, ty = ours(x), theirs(tx)
        up = g[: y.shape[0]] if y.ndim == 1 else g
        y.backward(nnet.tensor(up if y.ndim == 2 else g[:, 0]))
        ty.backward(torch.tensor(up if ty.ndim == 2 else g[:, 0]))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_prod_of_an_empty_axis_is_one_and_scans_check_their_axis():
    x = nnet.tensor(np.zeros((2, 0)), requires_grad=True)
    y = nnet.prod(x, axis=1)
    np.testing.assert_array_equal(y.numpy(), [1.0, 1.0])
    y.sum().backward()
    assert x.grad.shape == (2, 0)
    with pytest.raises(ValueError, match="cumsum: axis 2 is out of range"):
        nnet.cumsum(x, 2)
    with pytest.raises(TypeError, match="cumprod: axis must be one int"):
        nnet.cumprod(x, (0, 1))
    np.testing.assert_array_equal(nnet.cumsum(nnet.ones((2, 2))).numpy(), [1, 2, 3, 4])


def test_numpy_functions_dispatch_to_the_scans():
    x = nnet.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    for y, expected in [(np.cumsum(x, axis=1), [[1, 3], [3, 7]]),
                        (np.cumprod(x, 0), [[1, 2], [3, 8]]),
                        (np.prod(x, axis=0, keepdims=True), [[3, 8]])]:  # fmt: skip
        assert y.requires_grad
        np.testing.assert_array_equal(y.numpy(), expected)
    np.prod(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[24, 12], [8, 6]])
