"""Per-channel vectors broadcast over the rows of an (M, C) array, with long inner loops.

NumPy's inner loop over ``a (M, C) + v (C,)`` runs C elements at a time: with 4 channels it costs
5-10 ns per element. Viewing ``a`` as (M / L, L C) rows against ``v`` tiled L times gives the same
result with inner loops L times longer: ``y += b`` on (78,400, 4) took 361 us, 49 us at L = 64.
Rows of several thousand elements come close to a plain same-shape pass, and L need not be a power
of two: the seed's (19,600, 4) took 10.9 us at L = 16 (the largest power of two dividing 19,600),
5.2 at L = 1,960; the wide CNN's (12,544, 64) 116 us at L = 8 and 82 at L = 128 (a plain
``a * a`` 5.0 and 63 us; float32, one thread, under ``chrt -f 10``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from nnet.threads import blas_threads

#: Widest row (in elements) the tiling aims for: long enough to amortise NumPy's broadcasting loop
#: (rows under a few thousand elements ran 1.5-2x slower than a plain pass), small enough that the
#: tiled vector (32 KB of float32) stays in L1.
_ROW = 8192


def _rows_contiguous(a: np.ndarray) -> bool:
    """Whether each (M, C) plane of ``a`` (its last two axes) is one contiguous block, so that it
    can be viewed as (M / L, L C) without a copy, whatever the strides between planes."""
    item = a.itemsize
    return a.strides[-1] == item and a.strides[-2] == a.shape[-1] * item


def per_channel(
    ufunc: np.ufunc, a: np.ndarray, v: Any, out: np.ndarray | None = None
) -> np.ndarray:
    """``ufunc(a, v)`` for an (M, C) array ``a``, or a stack (..., M, C) of planes each contiguous,
    and a per-channel (C,) vector ``v`` (``out``: where to write, possibly ``a`` itself).

    >>> a = np.arange(8.0).reshape(4, 2)
    >>> per_channel(np.add, a, np.array([10.0, 20.0]))
    array([[10., 21.],
           [12., 23.],
           [14., 25.],
           [16., 27.]])
    """
    m, c = a.shape[-2:]
    tiles = _tiles(m, c)
    contiguous = _rows_contiguous(a) and (out is None or _rows_contiguous(out))
    if tiles == 1 or not contiguous:
        return ufunc(a, v, out=out)
    shape = (*a.shape[:-2], m // tiles, tiles * c)
    row = np.empty((tiles, c), np.result_type(v))
    row[...] = v  # np.tile's Python-level checks cost more than this whole copy
    # with contiguous planes these reshapes are views, so ``out`` is written in place
    wide = ufunc(a.reshape(shape), row.reshape(-1), out=None if out is None else out.reshape(shape))
    return wide.reshape(a.shape)


@lru_cache(maxsize=256)
def _tiles(m: int, c: int) -> int:
    """The most rows of C values, at most ``_ROW`` values in all, that tile M rows exactly (the
    largest divisor of M up to ``_ROW // C``); cached, as a network meets few shapes."""
    for tiles in range(min(m, _ROW // max(c, 1)), 1, -1):
        if m % tiles == 0:
            return tiles
    return 1


#: Arrays of at least this many values take :func:`relu` against a row of zeros; smaller ones
#: against a scalar 0, whose loop has no vector path but whose one call beats building the row
#: (float32, one thread, under ``chrt -f 10``: (2450, 8) 3.9 vs 8.9 us, (19600, 4) 14.6 vs 21.7,
#: (12544, 32) 120 vs 130, (12544, 64) 309 vs 272; inside a kernel's block on two threads the row's
#: four calls each hand the GIL between the cores).
RELU_ROW_FROM = 2**19


def relu(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.maximum(a, 0)`` for an (M, C) array or a stack of contiguous planes, the same values
    (NaN and signed zeros included); from :data:`RELU_ROW_FROM` values against a row of zeros:
    NumPy's loop against a scalar 0 has no vector path (0.47 ms on (50176, 32) float32, 0.15
    against zeros).

    >>> relu(np.array([[-1.0, 2.0], [np.nan, 3.0]]))
    array([[ 0.,  2.],
           [nan,  3.]])
    """
    if a.size < RELU_ROW_FROM:
        return np.maximum(a, a.dtype.type(0), out=out)
    return per_channel(np.maximum, a, np.zeros(a.shape[-1], a.dtype), out=out)


def plane_sums(a: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """Per-channel sums over a stack (P, M, C) of planes, each contiguous: :func:`column_sums` of
    every plane (``ones`` holds at least M ones), added in plane order.

    >>> plane_sums(np.arange(12.0).reshape(2, 3, 2), np.ones(3))
    array([30., 36.])
    """
    m = a.shape[1]
    total = column_sums(a[0], ones[:m])
    for plane in a[1:]:
        total += column_sums(plane, ones[:m])
    return total


def plane_square_sums(a: np.ndarray) -> np.ndarray:
    """Per-channel sums of squares over a stack (P, M, C) of planes, each contiguous: each plane
    viewed as rows of many channels' values (as :func:`per_channel` does), one multiply-and-sum
    pass per plane without a temporary (a third of squaring into a buffer and summing that).

    >>> plane_square_sums(np.arange(12.0).reshape(2, 3, 2))
    array([220., 286.])
    """
    m, c = a.shape[1:]
    tiles = _tiles(m, c) if _rows_contiguous(a) else 1
    total = np.zeros(tiles * c, a.dtype)
    for plane in a:
        wide = plane.reshape(m // tiles, tiles * c)
        total += np.einsum("ij,ij->j", wide, wide)
    return total.reshape(tiles, c).sum(axis=0)


def column_sums(a: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """Sum over the rows of an (M, C) array as ``ones @ a``: one BLAS pass, where a reduce over
    axis 0 walks rows of C floats (983 us against about 5 us on the seed's (78,400, 4) input).

    On one BLAS thread: a second thread only wakes for a pass this short (OpenBLAS's workers sleep
    between products, nnet/_openblas.py) and costs more than it saves (ones @ (12544, 64):
    43 us on one thread, 72 on two, under ``chrt -f 10`` on the 2-core test machine).

    >>> column_sums(np.arange(6.0).reshape(3, 2), np.ones(3))
    array([6., 9.])
    """
    with blas_threads(1):
        return ones @ a
