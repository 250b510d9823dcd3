"""Rearrangements and matrix parts (split, chunk, tile, repeat, repeat_interleave, flip, roll, tril,
triu, diagonal, diag, trace): compositions of the shape primitives, checked against NumPy and
PyTorch, with gradients (first and second order) over random shapes with size-1 and empty axes,
NumPy dispatch and errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P
from nnet.testing.strategies import shapes

GRAD_SHAPES = shapes(min_dims=1, max_dims=3, min_side=0, max_side=3)
MATRICES = shapes(min_dims=2, max_dims=3, min_side=0, max_side=4)


def _joined(parts):
    """The pieces of a split as one tensor, so check_grad sees every piece."""
    return nnet.concatenate([p.reshape(-1) for p in parts]) if parts else None


@given(data=st.data(), seed=seeds)
def test_split_and_chunk(data, seed):
    shape = data.draw(GRAD_SHAPES)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    a = data.draw(arrays(shape))
    size = data.draw(st.integers(1, 4))
    parts = nnet.split(nnet.tensor(a), size, dim=dim)
    cuts = list(range(size, n, size))
    for p, e in zip(parts, np.split(a, cuts, axis=dim) if n else [a], strict=True):
        np.testing.assert_array_equal(p.numpy(), e)
    sections = data.draw(st.lists(st.integers(0, 2), max_size=3))
    if n >= sum(sections):
        sections.append(n - sum(sections))
    if sum(sections) == n:
        got = [p.numpy() for p in nnet.tensor(a).split(sections, dim)]
        want = np.split(a, np.cumsum(sections)[:-1], axis=dim)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    chunks = data.draw(st.integers(1, 4))
    got = [p.numpy() for p in nnet.chunk(nnet.tensor(a), chunks, axis=dim)]
    assert sum(g.shape[dim % len(shape)] for g in got) == n and len(got) <= chunks
    check_grad(lambda t: _joined(nnet.split(t, size, dim)), leaf(a), primitive=P.GetItem,
               seed=seed, second_order=True)  # fmt: skip


@given(data=st.data(), seed=seeds)
def test_tile_repeat_and_repeat_interleave(data, seed):
    shape = data.draw(shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    a = data.draw(arrays(shape))
    reps = tuple(data.draw(st.lists(st.integers(0, 3), min_size=0, max_size=3)))
    np.testing.assert_array_equal(nnet.tile(nnet.tensor(a), reps).numpy(), np.tile(a, reps))
    check_grad(lambda t: nnet.tile(t, reps), leaf(a), primitive=P.Reshape, seed=seed,
               second_order=True)  # fmt: skip
    sizes = (1,) * (len(shape) - len(reps)) + reps
    np.testing.assert_array_equal(nnet.tensor(a).repeat(*sizes).numpy(), np.tile(a, sizes))
    r = data.draw(st.integers(0, 3))
    np.testing.assert_array_equal(
        nnet.repeat_interleave(nnet.tensor(a), r).numpy(), np.repeat(a, r)
    )
    if shape:
        counts = np.array(data.draw(st.lists(st.integers(0, 3), min_size=shape[0], max_size=shape[0])),
                          dtype=np.int64)  # fmt: skip
        out = nnet.tensor(a).repeat_interleave(counts, dim=0)
        np.testing.assert_array_equal(out.numpy(), np.repeat(a, counts, axis=0))
        if out.size:
            check_grad(lambda t: t.repeat_interleave(counts, dim=0), leaf(a), primitive=P.GetItem,
                       seed=seed, second_order=True)  # fmt: skip


@given(data=st.data(), seed=seeds)
def test_flip_and_roll(data, seed):
    shape = data.draw(GRAD_SHAPES)
    a = data.draw(arrays(shape))
    axes = tuple(data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=3)))
    np.testing.assert_array_equal(nnet.flip(nnet.tensor(a), axes).numpy(), np.flip(a, axes))
    np.testing.assert_array_equal(nnet.tensor(a).flip().numpy(), np.flip(a))
    shifts = tuple(data.draw(st.integers(-5, 5)) for _ in axes)
    np.testing.assert_array_equal(
        nnet.roll(nnet.tensor(a), shifts, axes).numpy(), np.roll(a, shifts, axes)
    )
    s = data.draw(st.integers(-5, 5))
    np.testing.assert_array_equal(nnet.tensor(a).roll(s).numpy(), np.roll(a, s))
    check_grad(lambda t: nnet.flip(t, axes), leaf(a), primitive=P.GetItem, seed=seed,
               second_order=True)  # fmt: skip
    check_grad(lambda t: nnet.roll(t, shifts, axes), leaf(a), primitive=P.GetItem, seed=seed,
               second_order=True)  # fmt: skip


@given(data=st.data(), k=st.integers(-3, 3), seed=seeds)
def test_triangles_and_diagonals(data, k, seed):
    shape = data.draw(MATRICES)
    a = data.draw(arrays(shape))
    np.testing.assert_array_equal(nnet.tril(nnet.tensor(a), k).numpy(), np.tril(a, k))
    np.testing.assert_array_equal(nnet.tensor(a).triu(k).numpy(), np.triu(a, k))
    np.testing.assert_array_equal(
        nnet.diagonal(nnet.tensor(a), k, -2, -1).numpy(), np.diagonal(a, k, -2, -1)
    )
    np.testing.assert_allclose(nnet.trace(nnet.tensor(a), k, 0, 1).numpy(), np.trace(a, k, 0, 1))
    check_grad(lambda t: nnet.tril(t, k), leaf(a), primitive=P.Where, seed=seed, second_order=True)
    check_grad(lambda t: nnet.triu(t, k), leaf(a), primitive=P.Where, seed=seed)
    if np.diagonal(a, k, -2, -1).size:
        check_grad(lambda t: t.diagonal(k, -2, -1), leaf(a), primitive=P.GetItem, seed=seed,
                   second_order=True)  # fmt: skip
    v = a.reshape(-1)[:4]
    np.testing.assert_array_equal(nnet.diag(nnet.tensor(v), k).numpy(), np.diag(v, k))
    check_grad(lambda t: nnet.diag(t, k), leaf(v), primitive=P.ScatterAdd, seed=seed,
               second_order=True)  # fmt: skip
    m = a.reshape(a.shape[0] * a.shape[1] if a.ndim == 3 else a.shape[0], a.shape[-1])
    np.testing.assert_array_equal(nnet.tensor(m).diag(k).numpy(), np.diag(m, k))


def test_against_torch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((4, 5))
    x, t = nnet.tensor(a), torch.tensor(a)
    pairs = [
        ([p.numpy() for p in x.split([1, 3], 0)], [p.numpy() for p in t.split([1, 3], 0)]),
        ([p.numpy() for p in x.chunk(3, 1)], [p.numpy() for p in t.chunk(3, 1)]),
        ([x.repeat(2, 1, 3).numpy()], [t.repeat(2, 1, 3).numpy()]),
        ([nnet.tile(x, (2,)).numpy()], [torch.tile(t, (2,)).numpy()]),
        ([x.repeat_interleave(2, dim=1).numpy()], [t.repeat_interleave(2, dim=1).numpy()]),
        ([x.flip(0, 1).numpy()], [t.flip(0, 1).numpy()]),
        ([x.roll((1, -2), (0, 1)).numpy()], [t.roll((1, -2), (0, 1)).numpy()]),
        ([x.roll(3).numpy()], [t.roll(3).numpy()]),
        ([x.tril(-1).numpy(), x.triu(2).numpy()], [t.tril(-1).numpy(), t.triu(2).numpy()]),
        ([x.diag(1).numpy(), x[0].diag(-1).numpy()], [t.diag(1).numpy(), t[0].diag(-1).numpy()]),
        ([x.trace().numpy()], [t.trace().numpy()]),
    ]
    for ours, theirs in pairs:
        assert len(ours) == len(theirs)
        for o, w in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(o, w, rtol=1e-14)


def test_numpy_functions_dispatch():
    x = nnet.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    a = x.data
    outs = [np.tile(x, 2), np.repeat(x, 2, axis=1), np.flip(x, 0), np.roll(x, 1, 1), np.tril(x),
            np.triu(x, 1), np.diag(x), np.diagonal(x, 1), np.trace(x)]  # fmt: skip
    wants = [np.tile(a, 2), np.repeat(a, 2, axis=1), np.flip(a, 0), np.roll(a, 1, 1), np.tril(a),
             np.triu(a, 1), np.diag(a), np.diagonal(a, 1), np.trace(a)]  # fmt: skip
    for o, w in zip(outs, wants, strict=True):
        assert isinstance(o, nnet.Tensor) and o.requires_grad
        np.testing.assert_array_equal(o.numpy(), w)
    for ours, want in [(np.split(x, 2, axis=1), np.split(a, 2, axis=1)),
                       (np.split(x, [1, 5], axis=1), np.split(a, [1, 5], axis=1))]:  # fmt: skip
        assert [p.shape for p in ours] == [w.shape for w in want]
    np.trace(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.eye(3, 4))


def test_bad_arguments_name_the_op_and_the_fix():
    x = nnet.ones((3, 4))
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\] must .* add up to 3"):
        x.split([1, 1])
    with pytest.raises(ValueError, match="chunk: chunks must be a positive int"):
        x.chunk(0)
    with pytest.raises(ValueError, match="repeat: give at least one size per axis"):
        x.repeat(2)
    with pytest.raises(ValueError, match="tile: repetitions must be non-negative"):
        x.tile(-1)
    with pytest.raises(ValueError, match="repeat_interleave: 2 counts for axis 0 of length 3"):
        x.repeat_interleave(np.array([1, 2]), dim=0)
    with pytest.raises(ValueError, match="flip: axis 2 is out of range"):
        x.flip(2)
    with pytest.raises(ValueError, match="roll: 2 shifts for 1 dims"):
        x.roll((1, 2), 0)
    with pytest.raises(ValueError, match=r"tril: needs a matrix .* got shape \(4,\)"):
        nnet.tril(nnet.ones(4))
    with pytest.raises(ValueError, match=r"diag: needs a 1-D or 2-D tensor, got shape \(1, 2, 2\)"):
        nnet.diag(nnet.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"np\.split: 3 sections do not divide an axis of 4"):
        np.split(nnet.ones(4, requires_grad=True), 3)
