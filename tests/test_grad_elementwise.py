"""Elementwise primitives: forward against NumPy, gradients (first and second order) by central
differences over random shapes and broadcasting pairs, the documented kinks, numerical stability."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from catalogue import BINARY, UNARY
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P
from nnet.testing.strategies import broadcastable_shapes, shapes

PRIMITIVES_TESTED = {
    P.Add, P.Sub, P.Neg, P.Mul, P.Div, P.Pow, P.Exp, P.Log, P.Sqrt, P.Abs, P.Sigmoid, P.Tanh,
    P.Relu, P.Maximum, P.Minimum, P.Clip, P.Where, P.AsType,
}  # fmt: skip

SHAPES = shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
PAIRS = broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=4)
# gradient checks evaluate the function once per input element: smaller shapes keep them quick
GRAD_SHAPES = shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
GRAD_PAIRS = broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3)


# -- forward: the catalogue on NumPy and on Tensors -----------------------------------------------
@pytest.mark.parametrize("case", UNARY, ids=str)
@given(data=st.data())
def test_unary_forward_matches_numpy(case, data):
    a = data.draw(arrays(SHAPES, case.domains[0]))
    out = case.nnet_fn(nnet.tensor(a))
    np.testing.assert_allclose(out.numpy(), case.numpy_fn(a), rtol=1e-12, atol=1e-300)
    assert out.dtype == np.float64
    if case.name != "astype":  # float32 in, float32 out: Python scalars never up-cast
        out32 = case.nnet_fn(nnet.tensor(a.astype(np.float32)))
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32.numpy(), case.numpy_fn(a.astype(np.float32)), rtol=1e-5)


@pytest.mark.parametrize("case", BINARY, ids=str)
@given(data=st.data())
def test_binary_forward_matches_numpy(case, data):
    sa, sb = data.draw(PAIRS)
    a = data.draw(arrays(sa, case.domains[0]))
    b = data.draw(arrays(sb, case.domains[1]))
    expected = case.numpy_fn(a, b)
    out = case.nnet_fn(nnet.tensor(a), nnet.tensor(b))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    # a constant operand on either side: Python scalar or ndarray
    np.testing.assert_allclose(case.nnet_fn(nnet.tensor(a), b).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(case.nnet_fn(a, nnet.tensor(b)).numpy(), expected, rtol=1e-12)
    s = float(b.flat[0]) if b.size else 1.5
    np.testing.assert_allclose(
        case.nnet_fn(nnet.tensor(a), s).numpy(), case.numpy_fn(a, s), rtol=1e-12
    )
    a32 = nnet.tensor(a.astype(np.float32))
    assert case.nnet_fn(a32, s).dtype == np.float32  # a Python scalar never up-casts


# -- gradients --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", UNARY, ids=str)
@given(data=st.data(), seed=seeds)
def test_unary_grad(case, data, seed):
    a = data.draw(arrays(GRAD_SHAPES, case.domains[0]))
    check_grad(case.nnet_fn, leaf(a), primitive=case.primitive, seed=seed, second_order=True)


@pytest.mark.parametrize("case", BINARY, ids=str)
@given(data=st.data(), seed=seeds)
def test_binary_grad_with_broadcasting(case, data, seed):
    sa, sb = data.draw(GRAD_PAIRS)
    a = data.draw(arrays(sa, case.domains[0]))
    b = data.draw(arrays(sb, case.domains[1]))
    check_grad(
        case.nnet_fn, leaf(a), leaf(b), primitive=case.primitive, seed=seed, second_order=True
    )


@pytest.mark.parametrize("case", BINARY, ids=str)
@given(data=st.data(), seed=seeds, tensor_first=st.booleans(), scalar=st.booleans())
def test_binary_grad_with_a_constant_operand(case, data, seed, tensor_first, scalar):
    sa, sb = data.draw(GRAD_PAIRS)
    a = data.draw(arrays(sa, case.domains[0]))
    b = data.draw(arrays(sb, case.domains[1]))
    if tensor_first:
        const = float(b.flat[0]) if scalar and b.size else b
        check_grad(lambda t: case.nnet_fn(t, const), leaf(a), primitive=case.primitive, seed=seed)
    else:
        const = float(a.flat[0]) if scalar and a.size else a
        check_grad(lambda t: case.nnet_fn(const, t), leaf(b), primitive=case.primitive, seed=seed)


@given(data=st.data(), seed=seeds)
def test_where_grad(data, seed):
    sc, sa, sb = data.draw(broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    cond = data.draw(arrays(sc)) > 0
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    expected = np.where(cond, a, b)
    np.testing.assert_array_equal(
        nnet.where(cond, nnet.tensor(a), nnet.tensor(b)).numpy(), expected
    )
    check_grad(
        lambda x, y: nnet.where(cond, x, y), leaf(a), leaf(b), primitive=P.Where, seed=seed,
        second_order=True,
    )  # fmt: skip
    check_grad(lambda x: nnet.where(cond, 2.0, x), leaf(b), primitive=P.Where, seed=seed)


def test_where_takes_a_bool_tensor_condition_without_a_gradient():
    a = nnet.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = nnet.where(a > 0, a, a * 10)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 10.0, 1.0])


@given(data=st.data(), seed=seeds)
def test_astype_between_float_dtypes(data, seed):
    a = data.draw(arrays(SHAPES))
    x32 = nnet.tensor(a.astype(np.float32), requires_grad=True)
    y = x32.astype(np.float64)
    assert y.dtype == np.float64
    g = np.random.default_rng(seed).standard_normal(a.shape)
    y.backward(nnet.tensor(g))
    assert x32.grad.dtype == np.float32
    np.testing.assert_array_equal(x32.grad.numpy(), g.astype(np.float32))
    check_grad(lambda t: t.double() * 2.0, leaf(a), primitive=P.AsType, seed=seed)


def test_astype_to_int_leaves_the_graph():
    x = nnet.tensor([1.5, 2.5], requires_grad=True)
    i = x.astype(np.int64)
    assert i.dtype == np.int64 and not i.requires_grad


# -- kinks, decided once (docs/derivations.md) ------------------------------------------------------
def _grad_of(fn, values):
    x = nnet.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)
    fn(x).sum().backward()
    return x.grad.numpy()


def test_relu_derivative_at_zero_is_zero():
    np.testing.assert_array_equal(_grad_of(nnet.relu, [-1.0, 0.0, 2.0]), [0.0, 0.0, 1.0])


def test_abs_derivative_at_zero_is_zero():
    np.testing.assert_array_equal(_grad_of(nnet.abs, [-1.0, 0.0, 2.0]), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(_grad_of(nnet.abs, [-0.0]), [0.0])


def test_maximum_minimum_of_a_tensor_with_itself_send_the_gradient_to_it_once():
    for op in (nnet.maximum, nnet.minimum):
        np.testing.assert_array_equal(_grad_of(lambda a, op=op: op(a, a), [1.0, -2.0]), [1.0, 1.0])


def test_maximum_minimum_ties_go_to_the_first_argument():
    for op in (nnet.maximum, nnet.minimum):
        a = nnet.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = nnet.tensor([1.0, 0.0, 5.0], requires_grad=True)
        op(a, b).backward(nnet.ones(3))
        first = [1.0, 1.0, 0.0] if op is nnet.maximum else [1.0, 0.0, 1.0]
        np.testing.assert_array_equal(a.grad.numpy(), first)
        np.testing.assert_array_equal(b.grad.numpy(), 1.0 - np.array(first))


def test_clip_passes_the_gradient_at_its_bounds():
    np.testing.assert_array_equal(
        _grad_of(lambda a: nnet.clip(a, -1.0, 1.0), [-2.0, -1.0, 0.0, 1.0, 2.0]),
        [0.0, 1.0, 1.0, 1.0, 0.0],
    )


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="clip"):
        nnet.clip(nnet.ones(2))


def test_pow_exponent_gradient_is_zero_where_the_base_is_not_positive():
    a = nnet.tensor([-2.0, 0.0, 2.0], dtype=np.float64)
    b = nnet.tensor([2.0, 2.0, 2.0], dtype=np.float64, requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 0.0, 4.0 * np.log(2.0)])


# -- stability: exact limits at +-1e4, no warnings ----------------------------------------------------
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_are_exact_at_large_inputs(dtype):
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        x = nnet.tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype), requires_grad=True)
        s = nnet.sigmoid(x)
        assert s.dtype == dtype
        assert s.numpy()[0] == 0.0 and s.numpy()[-1] == 1.0 and s.numpy()[2] == 0.5
        t = nnet.tanh(x)
        assert t.numpy()[0] == -1.0 and t.numpy()[-1] == 1.0
        (s + t).sum().backward()
        assert np.isfinite(x.grad.numpy()).all()
        assert x.grad.numpy()[0] == 0.0 and x.grad.numpy()[-1] == 0.0
