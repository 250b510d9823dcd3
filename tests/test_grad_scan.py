"""Reductions and scans beyond the seed's (std, ...): forward against NumPy and PyTorch, gradients
(first and second order) over random shapes, axes and keepdims, PyTorch's argument spellings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st
from test_grad_reduction import shape_and_axis

import nnet
from nnet.autograd import ops as P

PRIMITIVES_TESTED: set[type] = set()


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
    with pytest.raises(TypeError, match="var: unexpected argument"):
        x.std(dims=1)
    with pytest.raises(ValueError, match="var: axis 3 is out of range"):
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
