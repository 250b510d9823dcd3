"""Sorting and gathering (sort, argsort, topk, gather, take_along_axis, scatter_add): compositions of
indexing and the scatter primitive, against NumPy and PyTorch, with gradients (first and second
order) over random shapes with size-1 and empty axes, the tie rule, NumPy dispatch and errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P
from nnet.testing.strategies import shapes

SHAPES = shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)


@st.composite
def shape_and_dim(draw, min_side=0):
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=4))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@given(data=st.data(), descending=st.booleans(), seed=seeds)
def test_sort_and_argsort(data, descending, seed):
    shape, dim = data.draw(shape_and_dim())
    # a coarse lattice: many ties
    a = data.draw(arrays(shape, "off_kinks")).round(0)
    values, indices = nnet.sort(nnet.tensor(a), dim, descending=descending)
    order = np.argsort(-a if descending else a, axis=dim, kind="stable")
    np.testing.assert_array_equal(indices.numpy(), order)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(a, order, dim))
    np.testing.assert_array_equal(nnet.tensor(a).argsort(dim, descending).numpy(), order)
    assert indices.dtype == np.int64 and not indices.requires_grad
    b = data.draw(arrays(shape, "off_kinks", unique=True))
    check_grad(lambda t: t.sort(dim, descending).values, leaf(b), primitive=P.GetItem, seed=seed,
               second_order=True)  # fmt: skip


@given(data=st.data(), largest=st.booleans(), seed=seeds)
def test_topk(data, largest, seed):
    shape, dim = data.draw(shape_and_dim())
    a = data.draw(arrays(shape, "off_kinks", unique=True))
    k = data.draw(st.integers(0, shape[dim]))
    values, indices = nnet.topk(nnet.tensor(a), k, dim, largest)
    order = np.argsort(-a if largest else a, axis=dim, kind="stable")
    want = np.take(order, np.arange(k), axis=dim)
    np.testing.assert_array_equal(indices.numpy(), want)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(a, want, dim))
    check_grad(lambda t: t.topk(k, dim, largest).values, leaf(a), primitive=P.GetItem, seed=seed,
               second_order=True)  # fmt: skip


@given(data=st.data(), seed=seeds)
def test_gather_take_along_axis_and_scatter_add(data, seed):
    shape, dim = data.draw(shape_and_dim(min_side=1))
    a = data.draw(arrays(shape))
    rng = np.random.default_rng(seed)
    ishape = tuple(int(rng.integers(0, n + 1)) for n in shape)  # no larger than a on every axis
    index = rng.integers(-shape[dim], shape[dim], size=ishape)  # repeats and negative indices
    d = dim % len(shape)
    full = rng.integers(-shape[d], shape[d], size=shape[:d] + ishape[d : d + 1] + shape[d + 1 :])
    np.testing.assert_array_equal(
        nnet.take_along_axis(nnet.tensor(a), full, dim).numpy(), np.take_along_axis(a, full, dim)
    )
    want = np.empty(ishape)
    for pos in np.ndindex(*ishape):
        src = list(pos)
        src[d] = index[pos]
        want[pos] = a[tuple(src)]
    np.testing.assert_array_equal(nnet.gather(nnet.tensor(a), dim, index).numpy(), want)
    check_grad(lambda t: t.gather(dim, index), leaf(a), primitive=P.GetItem, seed=seed,
               second_order=True)  # fmt: skip
    src = data.draw(arrays(ishape))
    added = a.copy()
    for pos in np.ndindex(*ishape):
        dst = list(pos)
        dst[d] = index[pos]
        added[tuple(dst)] += src[pos]
    np.testing.assert_allclose(nnet.scatter_add(nnet.tensor(a), dim, index, nnet.tensor(src)).numpy(),
                               added, rtol=1e-12, atol=1e-12)  # fmt: skip
    check_grad(lambda t, s: t.scatter_add(dim, index, s), leaf(a), leaf(src),
               primitive=P.ScatterAdd, seed=seed, second_order=True)  # fmt: skip


def test_ties_keep_their_order_and_the_gradient_follows():
    x = nnet.tensor([2.0, 1.0, 2.0, 1.0], requires_grad=True)
    values, indices = x.sort(descending=True)
    np.testing.assert_array_equal(indices.numpy(), [0, 2, 1, 3])
    values.backward(nnet.tensor([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 3.0, 2.0, 4.0])
    x.grad = None
    values, indices = x.topk(1)
    assert indices.tolist() == [0]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 0.0, 0.0])


def test_nan_sorts_as_the_largest_value():
    x = nnet.tensor([1.0, np.nan, 0.0])
    assert x.sort().indices.tolist() == [2, 0, 1]
    assert x.sort(descending=True).indices.tolist() == [1, 0, 2]


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 5))
    index = rng.integers(0, 3, size=(2, 5))
    src = rng.standard_normal((2, 5))
    cols = rng.integers(0, 5, size=(3, 1))
    x, t = nnet.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    s, ts = nnet.tensor(src, requires_grad=True), torch.tensor(src, requires_grad=True)
    ours = [x.sort(1).values, x.sort(0, descending=True).values, x.topk(2, 1).values,
            x.topk(2, 0, largest=False).values, x.gather(0, index), x.scatter_add(0, index, s),
            x.take_along_dim(cols, 1)]  # fmt: skip
    theirs = [t.sort(1).values, t.sort(0, descending=True).values, t.topk(2, 1).values,
              t.topk(2, 0, largest=False).values, t.gather(0, torch.tensor(index)),
              t.scatter_add(0, torch.tensor(index), ts),
              t.take_along_dim(torch.tensor(cols), 1)]  # fmt: skip
    weights = [rng.standard_normal(o.shape) for o in ours]
    sum((o * w).sum() for o, w in zip(ours, weights, strict=True)).backward()
    sum((o * torch.tensor(w)).sum() for o, w in zip(theirs, weights, strict=True)).backward()
    for o, th in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.numpy(), th.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=1e-12)
    assert x.topk(3, 1).indices.tolist() == t.topk(3, 1).indices.tolist()


def test_numpy_functions_dispatch():
    x = nnet.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    y = np.sort(x)
    np.testing.assert_array_equal(y.numpy(), [[1, 2, 3]])
    z = np.take_along_axis(x, np.array([[2, 2]]), axis=1)
    (y.sum() + z.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1, 3]])
    np.testing.assert_array_equal(np.argsort(x), [[1, 2, 0]])


def test_bad_input_names_the_op_and_the_problem():
    x = nnet.ones((2, 3))
    with pytest.raises(
        ValueError, match=r"gather: the index needs as many axes as the input \(2\)"
    ):
        x.gather(0, np.array([0, 1]))
    with pytest.raises(TypeError, match="gather: the index must hold integers"):
        x.gather(0, np.array([[0.5]]))
    with pytest.raises(IndexError, match=r"gather: an index is out of range for shape \(2, 3\)"):
        x.gather(0, np.array([[5]]))
    with pytest.raises(
        ValueError, match=r"gather: index shape \(3, 1\) is larger than the input's"
    ):
        x.gather(1, np.zeros((3, 1), np.int64))
    with pytest.raises(IndexError, match="scatter_add: an index is out of range for dim 0"):
        x.scatter_add(0, np.array([[2]]), nnet.ones((1, 1)))
    with pytest.raises(ValueError, match=r"scatter_add: src of shape \(1,\) is smaller"):
        x.scatter_add(0, np.array([[1]]), nnet.ones(1))
    with pytest.raises(ValueError, match="topk: k=4 is out of range for dim 1 of length 3"):
        x.topk(4)
    with pytest.raises(ValueError, match="take_along_axis: index shape"):
        nnet.take_along_axis(x, np.zeros((3, 1), np.int64), 1)
