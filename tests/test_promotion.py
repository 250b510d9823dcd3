"""Type promotion follows PyTorch's categories, not NumPy's value ranges."""

import operator

import numpy as np
import pytest

import nnet


def f32(*shape):
    return nnet.ones(shape or (3,))


def arr(dtype, shape=(3,)):
    return nnet.tensor(np.ones(shape, dtype))


# (left, right, op, the dtype PyTorch gives): written from PyTorch's documented rules
CASES = [
    (lambda: f32(), lambda: arr(np.int64), operator.mul, np.float32),
    (lambda: arr(np.int64), lambda: f32(), operator.add, np.float32),
    (lambda: f32(), lambda: arr(np.float64, ()), operator.mul, np.float32),  # 0-d ranks lower
    (lambda: f32(), lambda: arr(np.float64), operator.mul, np.float64),  # same category: wider
    (lambda: arr(np.int32), lambda: arr(np.int64, ()), operator.add, np.int32),
    (lambda: arr(np.int64), lambda: 2.5, operator.mul, np.float32),  # a Python float: float32
    (lambda: 2.5, lambda: arr(np.int64), operator.sub, np.float32),
    (lambda: arr(np.int64), lambda: arr(np.int64), operator.truediv, np.float32),
    (lambda: arr(np.int64), lambda: 2, operator.truediv, np.float32),
    (lambda: arr(np.int64), lambda: 2, operator.mul, np.int64),
    (lambda: arr(bool), lambda: 1, operator.add, np.int64),
    (lambda: arr(np.float16), lambda: 2.0, operator.mul, np.float16),
    (lambda: f32(), lambda: np.float64(2.0), operator.mul, np.float32),  # NumPy scalars are weak
    (lambda: f32(), lambda: arr(np.int64), operator.pow, np.float32),
    (lambda: arr(np.int64), lambda: f32(), nnet.maximum, np.float32),
    (lambda: f32(2, 3), lambda: arr(np.int64, (3, 2)), operator.matmul, np.float32),
]


@pytest.mark.parametrize("left, right, op, want", CASES)
def test_result_dtype_is_pytorchs(left, right, op, want):
    a, b = left(), right()
    out = op(a, b)
    assert out.dtype == want
    values = op(np.asarray(a, np.float64), np.asarray(b, np.float64))
    np.testing.assert_allclose(out.numpy(), values, rtol=1e-3)


def test_where_promotes_its_two_branches():
    cond = nnet.tensor([True, False, True])
    assert nnet.where(cond, f32(), arr(np.int64)).dtype == np.float32


def test_float32_parameter_times_int_tensor_keeps_a_float32_gradient():
    w = nnet.ones(3, requires_grad=True)
    (w * arr(np.int64)).sum().backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.numpy(), [1, 1, 1])


# PyTorch refuses a matmul of two dtypes; nnet promotes as for the elementwise ops
@pytest.mark.parametrize("left, right, op, want", [c for c in CASES if c[2] is not operator.matmul])
def test_matches_torch(left, right, op, want):
    torch = pytest.importorskip("torch")

    def to_torch(x):
        if isinstance(x, nnet.Tensor):
            return torch.from_numpy(x.numpy().copy())
        return float(x) if isinstance(x, np.floating) else x

    torch_op = {nnet.maximum: torch.maximum}.get(op, op)
    ours = op(left(), right())
    theirs = torch_op(to_torch(left()), to_torch(right()))
    assert ours.dtype == theirs.numpy().dtype
