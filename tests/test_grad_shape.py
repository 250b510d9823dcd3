"""Shape primitives: forward against NumPy and gradients (first and second order) over random
shapes with size-1 and empty axes: reshape and its spellings, transpose, broadcast_to, indexing
(basic, integer arrays with repeats, bool masks) and its adjoint, concatenate, stack, pad."""

from __future__ import annotations

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P
from nnet.testing.strategies import broadcastable_shapes, shapes

PRIMITIVES_TESTED = {
    P.Reshape, P.Transpose, P.BroadcastTo, P.GetItem, P.ScatterAdd, P.Concatenate, P.Stack, P.Pad,
}  # fmt: skip

SHAPES = shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


def _check(fn, a, primitive, seed, reference=None):
    """Forward against ``reference`` on the array, then the gradient checks, second order included."""
    if reference is not None:
        np.testing.assert_array_equal(fn(nnet.tensor(a)).numpy(), reference(a))
    check_grad(fn, leaf(a), primitive=primitive, seed=seed, second_order=True)


# -- reshape and friends ------------------------------------------------------------------------
@st.composite
def reshape_targets(draw, shape):
    """A shape with the same number of elements: the axes permuted, maybe a 1 inserted, maybe one
    axis given as -1 (only for non-empty shapes, where -1 is unambiguous)."""
    target = list(draw(st.permutations(shape)))
    if draw(st.booleans()):
        target.insert(draw(st.integers(0, len(target))), 1)
    if target and int(np.prod(shape)) > 0 and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return tuple(target)


@given(data=st.data(), seed=seeds)
def test_reshape(data, seed):
    a = data.draw(arrays(SHAPES))
    target = data.draw(reshape_targets(a.shape))
    _check(lambda t: t.reshape(target), a, P.Reshape, seed, lambda x: x.reshape(target))
    _check(lambda t: nnet.reshape(t, *target), a, P.Reshape, seed, lambda x: x.reshape(target))


@given(data=st.data(), seed=seeds)
def test_flatten_squeeze_unsqueeze(data, seed):
    a = data.draw(arrays(shapes(min_dims=1, max_dims=3, min_side=0, max_side=3)))
    nd = a.ndim
    start = data.draw(st.integers(0, nd - 1))
    end = data.draw(st.integers(start, nd - 1))
    flat_shape = a.shape[:start] + (int(np.prod(a.shape[start : end + 1])),) + a.shape[end + 1 :]
    _check(lambda t: t.flatten(start, end), a, P.Reshape, seed, lambda x: x.reshape(flat_shape))
    axis = data.draw(st.integers(-nd - 1, nd))
    _check(lambda t: t.unsqueeze(axis), a, P.Reshape, seed, lambda x: np.expand_dims(x, axis))
    b = a.reshape(a.shape + (1,))
    _check(lambda t: t.squeeze(-1), b, P.Reshape, seed, lambda x: np.squeeze(x, -1))
    _check(lambda t: nnet.squeeze(t), b, P.Reshape, seed, np.squeeze)


def test_reshape_and_squeeze_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape .* \(2, 3\) .* into \(4, 2\)"):
        nnet.ones((2, 3)).reshape(4, 2)
    with pytest.raises(ValueError, match=r"squeeze: axis 1 has size 3, not 1"):
        nnet.ones((2, 3)).squeeze(1)


# -- transpose -----------------------------------------------------------------------------------
@given(data=st.data(), seed=seeds)
def test_transpose_permute_swapaxes(data, seed):
    a = data.draw(arrays(shapes(min_dims=1, max_dims=4, min_side=0, max_side=3)))
    nd = a.ndim
    perm = data.draw(st.permutations(range(nd)))
    neg = tuple(p - nd if i % 2 else p for i, p in enumerate(perm))  # some axes given negative
    _check(lambda t: t.permute(*neg), a, P.Transpose, seed, lambda x: x.transpose(perm))
    _check(lambda t: nnet.permute(t, perm), a, P.Transpose, seed, lambda x: x.transpose(perm))
    if nd > 1:
        _check(lambda t: t.T, a, P.Transpose, seed, lambda x: x.T)
        i, j = data.draw(st.permutations(range(nd)))[:2]
        _check(lambda t: t.swapaxes(i, j), a, P.Transpose, seed, lambda x: x.swapaxes(i, j))
        _check(lambda t: t.transpose(i, j), a, P.Transpose, seed, lambda x: x.swapaxes(i, j))


def test_permute_rejects_a_non_permutation():
    with pytest.raises(ValueError, match="not a permutation"):
        nnet.ones((2, 3)).permute(0, 0)


def test_transpose_swaps_two_dims_as_pytorch():
    x = nnet.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.transpose(0, 1).numpy(), x.numpy().T)
    np.testing.assert_array_equal(nnet.transpose(x, 1, 0).numpy(), x.numpy().T)
    assert nnet.ones((2, 3, 4)).transpose(0, 2).shape == (4, 3, 2)


@pytest.mark.parametrize("args", [(), ((1, 0),), (1, 0, 2)])
def test_transpose_with_numpy_axes_fails_pointing_to_permute(args):
    with pytest.raises(TypeError, match=r"transpose: takes two dims.*permute"):
        nnet.ones((2, 3, 4)).transpose(*args)


def test_t_transposes_a_matrix_and_refuses_more_dims():
    assert nnet.ones((2, 3)).t().shape == (3, 2)
    assert nnet.ones(3).t().shape == (3,)
    with pytest.raises(ValueError, match=r"t: expects a tensor of at most 2 dims.*permute"):
        nnet.ones((2, 3, 4)).t()


# -- broadcast_to --------------------------------------------------------------------------------
@given(data=st.data(), seed=seeds, lead=st.integers(1, 2))
def test_broadcast_to(data, seed, lead):
    sa, sb = data.draw(broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    target = (lead, *np.broadcast_shapes(sa, sb))  # one more axis: never the identity
    a = data.draw(arrays(sa))
    ref = lambda x: np.broadcast_to(x, target)  # noqa: E731
    _check(lambda t: nnet.broadcast_to(t, target), a, P.BroadcastTo, seed, ref)
    _check(lambda t: t.expand(*target), a, P.BroadcastTo, seed, ref)


def test_broadcast_to_error_names_the_shapes():
    with pytest.raises(
        ValueError, match=r"broadcast_to: cannot broadcast shape \(2, 3\) to \(3, 3\)"
    ):
        nnet.broadcast_to(nnet.ones((2, 3)), (3, 3))


# -- indexing ------------------------------------------------------------------------------------
@st.composite
def basic_indices(draw, shape):
    """Slices (any step, negative too), ints (maybe negative), None and at most one Ellipsis."""
    items: list = []
    used = draw(st.integers(0, len(shape)))
    for n in shape[:used]:
        kind = draw(st.sampled_from(["slice", "int", "none"] if n else ["slice", "none"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "none":
            items.extend([None, slice(None)])
        else:
            start = draw(st.none() | st.integers(-n - 1, n + 1))
            stop = draw(st.none() | st.integers(-n - 1, n + 1))
            step = draw(st.sampled_from([None, 1, 2, -1, -2]))
            items.append(slice(start, stop, step))
    if draw(st.booleans()):
        # where every axis is indexed, the Ellipsis stands for none and may go anywhere; else it
        # goes last, so that the items keep indexing the leading axes
        at = draw(st.integers(0, len(items))) if used == len(shape) else len(items)
        items.insert(at, Ellipsis)
    return tuple(items)


@given(data=st.data(), seed=seeds)
def test_getitem_basic(data, seed):
    a = data.draw(arrays(SHAPES))
    index = data.draw(basic_indices(a.shape))
    _check(lambda t: t[index], a, P.GetItem, seed, lambda x: x[index])


@given(data=st.data(), seed=seeds)
def test_getitem_integer_arrays_with_repeats(data, seed):
    a = data.draw(arrays(shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)))
    n = a.shape[0]
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=6)), dtype=int)
    _check(lambda t: t[idx], a, P.GetItem, seed, lambda x: x[idx])
    as_list = idx.tolist()
    _check(lambda t: t[as_list], a, P.GetItem, seed, lambda x: x[idx])
    if a.ndim > 1:  # advanced index after a slice
        m = a.shape[1]
        cols = np.array(data.draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=4)))
        _check(lambda t: t[:, cols], a, P.GetItem, seed, lambda x: x[:, cols])
        # two index arrays broadcast together: pairs of (row, col)
        rows = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=1)))
        _check(lambda t: t[rows, cols], a, P.GetItem, seed, lambda x: x[rows, cols])


@given(data=st.data(), seed=seeds)
def test_getitem_bool_mask(data, seed):
    a = data.draw(arrays(SHAPES))
    mask = data.draw(arrays(a.shape)) > 0
    _check(lambda t: t[mask], a, P.GetItem, seed, lambda x: x[mask])
    if a.ndim:
        rows = data.draw(arrays((a.shape[0],))) > 0
        _check(lambda t: t[rows], a, P.GetItem, seed, lambda x: x[rows])
        mask_t = nnet.tensor(mask)  # a bool Tensor works as a mask too
        _check(lambda t: t[mask_t], a, P.GetItem, seed, lambda x: x[mask])


def test_getitem_with_repeats_adds_up_gradients():
    a = nnet.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a[np.array([0, 2, 0, 0])].sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 0.0, 1.0])


def test_getitem_error_names_the_shape():
    with pytest.raises(IndexError, match=r"shape \(2, 3\)"):
        nnet.ones((2, 3))[5]


@given(data=st.data(), seed=seeds)
def test_scatter_add_the_adjoint_of_indexing(data, seed):
    a = data.draw(arrays(shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)))
    n = a.shape[0]
    idx = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=5)), dtype=int)
    g = data.draw(arrays(a[idx].shape))

    def scatter(t):
        return P.ScatterAdd.apply(t, idx, a.shape)

    expected = np.zeros(a.shape)
    np.add.at(expected, idx, g)
    np.testing.assert_array_equal(scatter(nnet.tensor(g)).numpy(), expected)
    check_grad(scatter, leaf(g), primitive=P.ScatterAdd, seed=seed, second_order=True)
    # and through indexing's own VJP, differentiated again
    check_grad(
        lambda t: t[idx] * t[idx], leaf(a), primitive=P.GetItem, seed=seed, second_order=True
    )


def test_item_assignment_is_refused_with_a_way_out():
    with pytest.raises(TypeError, match=r"nnet\.where"):
        nnet.ones(3)[0] = 1.0


# -- concatenate, stack, pad ----------------------------------------------------------------------
@given(data=st.data(), seed=seeds, k=st.integers(1, 3))
def test_concatenate(data, seed, k):
    base = data.draw(shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    parts = []
    for _ in range(k):
        shape = list(base)
        shape[axis] = data.draw(st.integers(0, 3))
        parts.append(data.draw(arrays(tuple(shape))))
    expected = np.concatenate(parts, axis=axis)
    tensors = [leaf(p) for p in parts]
    np.testing.assert_array_equal(nnet.concatenate(tensors, axis=axis).numpy(), expected)
    np.testing.assert_array_equal(nnet.cat(tensors, dim=axis).numpy(), expected)
    check_grad(
        lambda *ts: nnet.concatenate(ts, axis=axis), *tensors, primitive=P.Concatenate, seed=seed,
        second_order=True,
    )  # fmt: skip
    # a constant among the parts: only the tensors get gradients
    check_grad(
        lambda t: nnet.concatenate([parts[0], t], axis=axis), tensors[-1], primitive=P.Concatenate,
        seed=seed,
    )  # fmt: skip


@given(data=st.data(), seed=seeds, k=st.integers(1, 3))
def test_stack(data, seed, k):
    shape = data.draw(SHAPES)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    parts = [data.draw(arrays(shape)) for _ in range(k)]
    tensors = [leaf(p) for p in parts]
    np.testing.assert_array_equal(
        nnet.stack(tensors, axis=axis).numpy(), np.stack(parts, axis=axis)
    )
    check_grad(
        lambda *ts: nnet.stack(ts, axis=axis), *tensors, primitive=P.Stack, seed=seed,
        second_order=True,
    )  # fmt: skip


def test_concatenate_and_stack_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"concatenate: shapes \[\(2, 3\), \(2, 4\)\] differ"):
        nnet.concatenate([nnet.ones((2, 3)), nnet.ones((2, 4))], axis=0)
    with pytest.raises(ValueError, match=r"stack: all tensors need the same shape"):
        nnet.stack([nnet.ones(2), nnet.ones(3)])


@given(data=st.data(), seed=seeds)
def test_pad(data, seed):
    a = data.draw(arrays(shapes(min_dims=1, max_dims=3, min_side=0, max_side=3)))
    widths = tuple(
        (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in range(a.ndim)
    )
    value = data.draw(st.sampled_from([0.0, -1.5]))
    ref = lambda x: np.pad(x, widths, constant_values=value)  # noqa: E731
    _check(lambda t: nnet.pad(t, widths, value=value), a, P.Pad, seed, ref)
    _check(lambda t: nnet.pad(t, 1), a, P.Pad, seed, lambda x: np.pad(x, 1))


def test_pad_rejects_negative_widths():
    with pytest.raises(ValueError, match="pad: widths must be non-negative"):
        nnet.pad(nnet.ones((2, 2)), ((0, -1), (0, 0)))
