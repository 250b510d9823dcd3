"""Rearrangements composed from the shape primitives: split, chunk, tile, repeat, repeat_interleave,
flip, roll. Each is exact (values are only moved or copied), so its VJP is the shape primitives'.
Derivations: docs/derivations.md, "Rearrangements"."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnet.autograd.reduction import normalize_axis
from nnet.autograd.shape import _axis, broadcast_to, concatenate, reshape, shape_arg
from nnet.autograd.tensor import Tensor


def _as_tensor(a: Any) -> Tensor:
    return a if isinstance(a, Tensor) else Tensor(a)


def _slice(a: Tensor, axis: int, start: int, stop: int) -> Tensor:
    return a[(slice(None),) * axis + (slice(start, stop),)]


def split(
    a: Any, split_size_or_sections: int | Sequence[int], dim: int = 0, **kw: Any
) -> list[Tensor]:
    """PyTorch's split: pieces of ``split_size_or_sections`` elements along ``dim`` (the last one
    smaller), or pieces of the listed sizes, which must add up to the axis length.

    >>> import nnet
    >>> [p.shape for p in nnet.split(nnet.ones((5, 2)), 2)]
    [(2, 2), (2, 2), (1, 2)]
    """
    a = _as_tensor(a)
    dim = _axis("split", kw.pop("axis", dim), a.ndim)
    if kw:
        raise TypeError(f"split: unexpected argument(s) {sorted(kw)}")
    n = a.shape[dim]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0 and n:
            raise ValueError(f"split: the piece size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(
                f"split: sizes {sizes} must be non-negative and add up to {n}, the length of axis "
                f"{dim} of a tensor of shape {a.shape}"
            )
    bounds = np.cumsum([0, *sizes]).tolist()
    return [_slice(a, dim, lo, hi) for lo, hi in itertools.pairwise(bounds)]


def chunk(a: Any, chunks: int, dim: int = 0, **kw: Any) -> list[Tensor]:
    """PyTorch's chunk: ``chunks`` pieces of ceil(n / chunks) elements along ``dim`` (fewer when
    they run out).

    >>> import nnet
    >>> [p.shape for p in nnet.chunk(nnet.ones(5), 3)]
    [(2,), (2,), (1,)]
    """
    a = _as_tensor(a)
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    dim = _axis("chunk", kw.pop("axis", dim), a.ndim)
    n = a.shape[dim]
    return split(a, max(-(-n // int(chunks)), 1), dim, **kw)


def tile(a: Any, *reps: Any) -> Tensor:
    """``a`` repeated ``reps[i]`` times along axis i (NumPy's and PyTorch's tile); a shorter ``reps``
    is padded with 1s in front, a longer one gives ``a`` leading axes.

    >>> import nnet
    >>> nnet.tile(nnet.tensor([1.0, 2.0]), 2).numpy()
    array([1., 2., 1., 2.], dtype=float32)
    """
    a = _as_tensor(a)
    r = shape_arg(reps)
    if any(int(x) < 0 for x in r):
        raise ValueError(f"tile: repetitions must be non-negative, got {r}")
    ndim = max(len(r), a.ndim)
    r = (1,) * (ndim - len(r)) + tuple(int(x) for x in r)
    shape = (1,) * (ndim - a.ndim) + a.shape
    # (1, s0, 1, s1, ...) broadcast to (r0, s0, r1, s1, ...): the copies lie outside each axis
    inter = tuple(x for s in shape for x in (1, s))
    wide = tuple(x for rs in zip(r, shape, strict=True) for x in rs)
    out = broadcast_to(reshape(a, inter), wide)
    return reshape(out, tuple(ri * s for ri, s in zip(r, shape, strict=True)))


def repeat(a: Any, *sizes: Any) -> Tensor:
    """PyTorch's ``Tensor.repeat``: :func:`tile`, with at least as many sizes as ``a`` has axes
    (NumPy's ``repeat`` is :func:`repeat_interleave`)."""
    a = _as_tensor(a)
    r = shape_arg(sizes)
    if len(r) < a.ndim:
        raise ValueError(
            f"repeat: give at least one size per axis ({a.ndim} for shape {a.shape}), got {r}"
        )
    return tile(a, r)


def repeat_interleave(a: Any, repeats: Any, dim: int | None = None, **kw: Any) -> Tensor:
    """Each element repeated ``repeats`` times along ``dim`` (NumPy's ``repeat``); ``repeats`` is
    one int or one count per element; over the flattened tensor when ``dim`` is None.

    >>> import nnet
    >>> nnet.repeat_interleave(nnet.tensor([1.0, 2.0]), 2).numpy()
    array([1., 1., 2., 2.], dtype=float32)
    """
    a = _as_tensor(a)
    dim = kw.pop("axis", dim)
    if kw:
        raise TypeError(f"repeat_interleave: unexpected argument(s) {sorted(kw)}")
    if dim is None:
        a, dim = reshape(a, -1), 0
    dim = _axis("repeat_interleave", dim, a.ndim)
    n = a.shape[dim]
    counts = np.asarray(repeats.data if isinstance(repeats, Tensor) else repeats)
    if counts.dtype.kind not in "iu" or (counts < 0).any() or counts.ndim > 1:
        raise ValueError(
            f"repeat_interleave: repeats must be a non-negative int or a 1-D array of them, got "
            f"{repeats!r}"
        )
    if counts.ndim == 0:
        r = int(counts)
        grown = reshape(a, a.shape[: dim + 1] + (1,) + a.shape[dim + 1 :])
        grown = broadcast_to(grown, a.shape[: dim + 1] + (r,) + a.shape[dim + 1 :])
        return reshape(grown, a.shape[:dim] + (n * r,) + a.shape[dim + 1 :])
    if counts.shape != (n,):
        raise ValueError(
            f"repeat_interleave: {counts.shape[0]} counts for axis {dim} of length {n} (shape {a.shape})"
        )
    return a[(slice(None),) * dim + (np.repeat(np.arange(n), counts),)]


def flip(a: Any, dims: Any = None, **kw: Any) -> Tensor:
    """``a`` reversed along ``dims`` (all axes when None, as NumPy's ``flip``); ``axis=`` works too.

    >>> import nnet
    >>> nnet.flip(nnet.tensor([1.0, 2.0, 3.0]), 0).numpy()
    array([3., 2., 1.], dtype=float32)
    """
    a = _as_tensor(a)
    dims = kw.pop("axis", dims)
    if kw:
        raise TypeError(f"flip: unexpected argument(s) {sorted(kw)}")
    axes = normalize_axis(dims, a.ndim, "flip")
    return a[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(a.ndim))]


def roll(a: Any, shifts: Any, dims: Any = None, **kw: Any) -> Tensor:
    """Elements shifted ``shifts`` places along ``dims``, wrapping around (over the flattened tensor
    when ``dims`` is None, as NumPy's and PyTorch's roll).

    >>> import nnet
    >>> nnet.roll(nnet.tensor([1.0, 2.0, 3.0]), 1).numpy()
    array([3., 1., 2.], dtype=float32)
    """
    a = _as_tensor(a)
    dims = kw.pop("axis", dims)
    if kw:
        raise TypeError(f"roll: unexpected argument(s) {sorted(kw)}")
    if dims is None:
        return reshape(roll(reshape(a, -1), shifts, 0), a.shape)
    shift_list = [shifts] if isinstance(shifts, (int, np.integer)) else list(shifts)
    dim_list = [dims] if isinstance(dims, (int, np.integer)) else list(dims)
    if len(shift_list) != len(dim_list):
        raise ValueError(f"roll: {len(shift_list)} shifts for {len(dim_list)} dims")
    out = a
    for s, d in zip(shift_list, dim_list, strict=True):
        d = _axis("roll", d, a.ndim)
        n = a.shape[d]
        s = int(s) % n if n else 0
        if s:
            out = concatenate([_slice(out, d, n - s, n), _slice(out, d, 0, n - s)], axis=d)
    return out if out is not a else a[...]  # a new tensor, as PyTorch's, even for no shift
