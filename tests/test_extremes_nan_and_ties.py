"""The tie and NaN rules of max / min over every axis choice and of maximum / minimum (issue 18, bug 2).

docs/derivations.md#kinks states them: the gradient of a reduced slice goes to its first extreme element
in row-major order over the reduced axes, and in a slice holding a NaN (whose max and min are NaN) to its
first NaN. Before the fix, the small-axes fast path (non-last axes, at most 64 positions) compared
``s == ext``, false for NaN, so a NaN slice reduced over axis 0, 1 or (0, 1) of a (2, 4, 3) tensor gave
no element any gradient. The reference here walks each slice in plain Python.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnet

# few distinct values, so that ties are common, and NaN
VALUES = st.sampled_from([-1.0, 0.0, 2.0, 2.0, np.nan])


def reference_mask(a: np.ndarray, axes: tuple[int, ...], op: str) -> np.ndarray:
    """One True per slice: its first NaN if it has one, else its first max (min), walking the
    reduced axes in row-major order."""
    mask = np.zeros(a.shape, dtype=bool)
    kept = [i for i in range(a.ndim) if i not in axes]
    for outer in itertools.product(*[range(a.shape[i]) for i in kept]):
        best = None
        for inner in itertools.product(*[range(a.shape[i]) for i in axes]):
            index = [0] * a.ndim
            for i, p in zip(kept, outer, strict=True):
                index[i] = p
            for i, p in zip(axes, inner, strict=True):
                index[i] = p
            v = a[tuple(index)]
            if best is None:
                best = (v, tuple(index))
            elif np.isnan(best[0]):
                continue
            elif np.isnan(v) or (v > best[0] if op == "max" else v < best[0]):
                best = (v, tuple(index))
        if best is not None:
            mask[best[1]] = True
    return mask


@st.composite
def array_and_axes(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    a = draw(hnp.arrays(np.float64, shape, elements=VALUES))
    ndim = len(shape)
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return a, tuple(sorted(axes))


@pytest.mark.parametrize("op", ["max", "min"])
@given(case=array_and_axes(), keepdims=st.booleans(), as_none=st.booleans())
def test_gradient_goes_to_the_first_nan_or_first_extreme_over_any_axes(op, case, keepdims, as_none):
    a, axes = case
    every = axes == tuple(range(a.ndim))
    axis = None if as_none and every else axes
    x = nnet.tensor(a, requires_grad=True)
    y = getattr(x, "a" + op)(axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(y.numpy(), getattr(np, op)(a, axis=axes, keepdims=keepdims))
    y.backward(nnet.ones(y.shape, dtype=np.float64))
    np.testing.assert_array_equal(x.grad.numpy(), reference_mask(a, axes, op).astype(np.float64))


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("axis", [0, 1, 2, (0, 1), (0, 2), (1, 2), None])
def test_the_issues_nan_slices_of_a_2_4_3_tensor(op, axis):
    a = np.arange(24.0).reshape(2, 4, 3) * (1 if op == "max" else -1)
    a[1, 2, 0] = a[0, 0, 1] = a[1, 3, 0] = np.nan
    x = nnet.tensor(a, requires_grad=True)
    y = getattr(x, "a" + op)(axis=axis)
    y.sum().backward()
    axes = tuple(range(3)) if axis is None else (axis,) if isinstance(axis, int) else axis
    np.testing.assert_array_equal(x.grad.numpy(), reference_mask(a, axes, op))
    # every slice, NaN or not, passes its gradient to exactly one element
    assert x.grad.numpy().sum() == y.numpy().size


def test_maximum_minimum_send_a_nan_result_to_the_nan_operand():
    nan = np.nan
    a = nnet.tensor([nan, 1.0, 2.0, nan, 3.0], requires_grad=True)
    b = nnet.tensor([1.0, nan, 2.0, nan, 0.0], requires_grad=True)
    for op, wins in ((nnet.maximum, [1, 0, 1, 1, 1]), (nnet.minimum, [1, 0, 1, 1, 0])):
        a.grad = b.grad = None
        op(a, b).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), wins)
        np.testing.assert_array_equal(b.grad.numpy(), 1 - np.array(wins))
    a.grad = None
    nnet.maximum(0.5, a).sum().backward()  # a constant first argument: the NaN is still a's
    np.testing.assert_array_equal(a.grad.numpy(), [1, 1, 1, 1, 1])
