"""Reductions and normalisations: forward against NumPy, gradients (first and second order) over
random shapes, axes (int, negative, tuple, None) and keepdims; ties; stability at +-1e4."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from catalogue import NORMALISATIONS, REDUCTIONS, UNIQUE
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P
from nnet.testing.strategies import shapes

PRIMITIVES_TESTED = {P.Sum, P.Mean, P.Var, P.Max, P.Min, P.LogSumExp, P.Softmax, P.LogSoftmax}


@st.composite
def shape_and_axis(draw, max_side=4, nonempty_reduction=False, min_count=1):
    """A shape, an axis argument for it (None, an int maybe negative, or a tuple) and the reduced
    axes. With ``nonempty_reduction``, each reduced slice gets at least ``min_count`` elements."""
    min_dims = 1 if min_count > 1 else 0  # a 0-d tensor has one element to reduce
    shape = list(draw(shapes(min_dims=min_dims, max_dims=3, min_side=0, max_side=max_side)))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none"]))
    if kind == "none":
        axis, axes = None, list(range(ndim))
    elif kind == "int":
        axes = [draw(st.integers(0, ndim - 1))]
        axis = axes[0] - ndim * draw(st.integers(0, 1))  # sometimes negative
    else:
        axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        axis = tuple(axes)
    if nonempty_reduction:
        for i in axes:
            shape[i] = max(shape[i], 1)
        if axes and int(np.prod([shape[i] for i in axes])) < min_count:
            shape[axes[0]] = min_count
    return tuple(shape), axis


def _domain(case):
    return case.domains[0], case.name in UNIQUE


# -- forward --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", REDUCTIONS, ids=str)
@given(data=st.data(), keepdims=st.booleans())
def test_reduction_forward_matches_numpy(case, data, keepdims):
    empty_ok = case.name == "sum"
    min_count = 2 if case.name == "var" else 1  # the unbiased default divides by n - 1
    shape, axis = data.draw(shape_and_axis(nonempty_reduction=not empty_ok, min_count=min_count))
    domain, unique = _domain(case)
    a = data.draw(arrays(shape, domain, unique=unique))
    expected = case.numpy_fn(a, axis, keepdims)
    out = case.nnet_fn(nnet.tensor(a), axis, keepdims)
    assert out.shape == np.shape(expected) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    out32 = case.nnet_fn(nnet.tensor(a.astype(np.float32)), axis, keepdims)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", NORMALISATIONS, ids=str)
@given(data=st.data())
def test_normalisation_forward_matches_numpy(case, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = data.draw(arrays(shape))
    out = case.nnet_fn(nnet.tensor(a), axis)
    np.testing.assert_allclose(out.numpy(), case.numpy_fn(a, axis), rtol=1e-10, atol=1e-12)


def test_pytorch_spellings():
    a = nnet.tensor(np.arange(24.0).reshape(2, 3, 4))
    for name in ("sum", "mean", "amax", "amin", "logsumexp", "var"):
        np.testing.assert_array_equal(
            getattr(a, name)(dim=1, keepdim=True).numpy(),
            getattr(a, name)(axis=1, keepdims=True).numpy(),
        )
    np.testing.assert_allclose(
        nnet.var(a, dim=(0, 2), unbiased=True).numpy(), np.var(a.numpy(), axis=(0, 2), ddof=1)
    )
    np.testing.assert_array_equal(nnet.softmax(a, dim=0).numpy(), nnet.softmax(a, axis=0).numpy())


def test_var_correction_spellings():
    a = np.arange(12.0).reshape(3, 4) ** 2
    t = nnet.tensor(a)
    for ddof, spellings in (
        (1, [{}, {"correction": 1}, {"unbiased": True}, {"ddof": 1}, {"correction": None}]),
        (0, [{"correction": 0}, {"unbiased": False}, {"ddof": 0}]),
        (2.5, [{"correction": 2.5}]),
    ):
        for kw in spellings:
            np.testing.assert_allclose(t.var(1, **kw).numpy(), np.var(a, 1, ddof=ddof), err_msg=kw)
    np.testing.assert_allclose(t.var(1, False).numpy(), np.var(a, 1))  # PyTorch's positional
    np.testing.assert_allclose(np.var(t).numpy(), np.var(a))  # NumPy's function keeps ddof=0


def test_var_correction_errors():
    t = nnet.ones((2, 3))
    with pytest.raises(TypeError, match="var: unbiased and ddof both set the correction"):
        t.var(0, 1, unbiased=True)
    with pytest.raises(TypeError, match="std: correction and unbiased both set the correction"):
        t.std(correction=0, unbiased=False)
    with pytest.raises(ValueError, match="var: correction must be a non-negative number, got -1"):
        t.var(correction=-1)


def test_reduction_errors_name_the_op_and_axis():
    a = nnet.ones((2, 3))
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range .* 2 dimensions"):
        a.sum(axis=2)
    with pytest.raises(ValueError, match="mean: repeated axis"):
        a.mean(axis=(0, -2))
    with pytest.raises(TypeError, match="softmax: axis must be one int"):
        nnet.softmax(a, axis=(0, 1))
    with pytest.raises(TypeError, match="unexpected argument"):
        a.sum(dims=1)


def test_sum_and_mean_over_no_axes_are_the_identity():
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(nnet.tensor(a).sum(axis=()).numpy(), a)
    np.testing.assert_array_equal(nnet.tensor(a).mean(axis=()).numpy(), a)


# -- gradients --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", REDUCTIONS, ids=str)
@given(data=st.data(), keepdims=st.booleans(), seed=seeds)
def test_reduction_grad(case, data, keepdims, seed):
    empty_ok = case.name == "sum"
    min_count = 2 if case.name == "var" else 1  # the unbiased default divides by n - 1
    shape, axis = data.draw(shape_and_axis(3, nonempty_reduction=not empty_ok, min_count=min_count))
    domain, unique = _domain(case)
    a = data.draw(arrays(shape, domain, unique=unique))
    check_grad(
        lambda t: case.nnet_fn(t, axis, keepdims),
        leaf(a),
        primitive=case.primitive,
        seed=seed,
        second_order=True,
    )


@pytest.mark.parametrize("case", NORMALISATIONS, ids=str)
@given(data=st.data(), seed=seeds)
def test_normalisation_grad(case, data, seed):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = data.draw(arrays(shape))
    check_grad(
        lambda t: case.nnet_fn(t, axis), leaf(a), primitive=case.primitive, seed=seed,
        second_order=True,
    )  # fmt: skip


@pytest.mark.parametrize("case", NORMALISATIONS, ids=str)
def test_normalisation_over_an_empty_axis_is_empty(case):
    x = nnet.tensor(np.zeros((2, 0)), requires_grad=True)
    y = case.nnet_fn(x, -1)
    assert y.shape == (2, 0)
    y.backward(nnet.tensor(np.zeros((2, 0))))
    assert x.grad.shape == (2, 0)


def test_var_with_too_few_elements_is_nan_with_a_nan_gradient():
    x = nnet.tensor(np.ones((3, 1)), requires_grad=True)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = nnet.var(x, axis=1, ddof=1)
        assert np.isnan(v.numpy()).all()
        v.sum().backward()
    assert np.isnan(x.grad.numpy()).all()


def test_logsumexp_over_an_empty_axis_is_minus_infinity():
    x = nnet.tensor(np.zeros((2, 0)))
    np.testing.assert_array_equal(nnet.logsumexp(x, axis=1).numpy(), [-np.inf, -np.inf])


# -- PyTorch's max / min / argmax ----------------------------------------------------------------
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_with_a_dim_return_values_and_indices(op):
    a = nnet.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    pick, reduce = (np.argmax, np.max) if op == "max" else (np.argmin, np.min)
    for dim, keepdim in [(1, False), (0, True), (-1, True)]:
        result = getattr(a, op)(dim, keepdim)
        values, indices = result
        assert result.values is values and result.indices is indices
        np.testing.assert_array_equal(values.numpy(), reduce(a.numpy(), dim, keepdims=keepdim))
        np.testing.assert_array_equal(indices.numpy(), pick(a.numpy(), dim, keepdims=keepdim))
        assert indices.dtype == np.int64
    whole = getattr(nnet, op)(a)
    assert isinstance(whole, nnet.Tensor) and whole.item() == reduce(a.numpy())


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_of_two_tensors_are_elementwise(op):
    a, b = nnet.tensor([1.0, 5.0]), nnet.tensor([3.0, 2.0])
    want = np.maximum if op == "max" else np.minimum
    np.testing.assert_array_equal(getattr(nnet, op)(a, b).numpy(), want(a.numpy(), b.numpy()))


def test_max_with_several_dims_points_to_amax():
    with pytest.raises(TypeError, match=r"max: dim must be one int.*amax"):
        nnet.ones((2, 3, 4)).max(dim=(1, 2))


def test_values_indices_never_become_an_array():
    x = nnet.ones((2, 3))
    with pytest.raises(TypeError, match=r"\(values, indices\)"):
        np.asarray(x.max(1))
    with pytest.raises(TypeError, match=r"\(values, indices\)"):
        x - x.max(1, keepdim=True)


def test_argmax_argmin_take_dim_and_keepdim():
    a = nnet.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    assert a.argmax().item() == 3 and a.argmin().item() == 4
    np.testing.assert_array_equal(a.argmax(dim=1).numpy(), [1, 0])
    np.testing.assert_array_equal(nnet.argmin(a, dim=0, keepdim=True).numpy(), [[0, 1, 0]])
    np.testing.assert_array_equal(a.argmax(axis=1, keepdims=True).numpy(), [[1], [0]])


# -- ties: the first extreme element takes the gradient ------------------------------------------
@pytest.mark.parametrize("op", ["max", "min"])
def test_ties_send_the_gradient_to_the_first_element(op):
    v = 3.0 if op == "max" else -3.0
    a = nnet.tensor([[v, 0.0, v], [0.0, v, v]], requires_grad=True)
    values, indices = getattr(a, op)(dim=1)
    values.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(indices.numpy(), [0, 1])
    b = nnet.tensor([[v, 0.0], [v, v]], requires_grad=True)
    getattr(b, op)().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [[1, 0], [0, 0]])
    c = nnet.tensor(np.full((2, 2, 2), v), requires_grad=True)
    getattr(c, "a" + op)(axis=(0, 2)).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), [[[1, 0], [1, 0]], [[0, 0], [0, 0]]])


# -- stability -----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_is_exact_at_large_inputs(dtype):
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        x = nnet.tensor(np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype))
        x.requires_grad_()
        s = nnet.softmax(x, axis=1)
        np.testing.assert_array_equal(s.numpy()[0], [1, 0, 0])
        np.testing.assert_allclose(s.numpy()[1], 1 / 3, rtol=1e-6)
        ls = nnet.log_softmax(x, axis=1)
        np.testing.assert_allclose(ls.numpy()[0], [0.0, -1e4, -2e4])
        np.testing.assert_allclose(ls.numpy()[1], -np.log(3.0), rtol=1e-6)
        lse = nnet.logsumexp(x, axis=1)
        np.testing.assert_allclose(lse.numpy(), [1e4, -1e4 + np.log(3.0)], rtol=1e-7)
        big = nnet.tensor(np.array([1e4, 1e4], dtype=dtype)).logsumexp()
        assert big.item() == pytest.approx(1e4 + np.log(2.0), rel=1e-7)
        for out in (s, ls, lse):
            assert out.dtype == dtype
        (s.sum() + ls.sum() + lse.sum()).backward()
        assert np.isfinite(x.grad.numpy()).all()
