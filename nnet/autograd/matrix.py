"""Triangles and diagonals of matrices, composed from where, indexing and the scatter primitive:
tril, triu, diagonal, diag, trace. Derivations: docs/derivations.md, "Triangles and diagonals"."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.elementwise import where
from nnet.autograd.shape import ScatterAdd, _axis, permute
from nnet.autograd.tensor import Tensor


def _matrices(op: str, a: Any) -> Tensor:
    a = a if isinstance(a, Tensor) else Tensor(a)
    if a.ndim < 2:
        raise ValueError(
            f"{op}: needs a matrix or a batch of them (2 or more axes), got shape {a.shape}"
        )
    return a


def _tri(a: Tensor, k: int) -> np.ndarray:
    """True on and below the k-th diagonal of a's last two axes."""
    rows, cols = a.shape[-2:]
    return np.tri(rows, cols, k, dtype=bool)


def _offset(op: str, diagonal: int, kw: dict[str, Any]) -> int:
    """PyTorch's ``diagonal=`` or NumPy's ``k=``."""
    k = kw.pop("k", diagonal)
    if kw:
        raise TypeError(f"{op}: unexpected argument(s) {sorted(kw)}")
    return int(k)


def tril(a: Any, diagonal: int = 0, **kw: Any) -> Tensor:
    """The lower triangle of the last two axes: entries (i, j) with j - i <= ``diagonal`` (NumPy's
    ``k=``), zeros above.

    >>> import nnet
    >>> nnet.tril(nnet.ones((2, 2))).numpy()
    array([[1., 0.],
           [1., 1.]], dtype=float32)
    """
    a = _matrices("tril", a)
    k = _offset("tril", diagonal, kw)
    return where(_tri(a, k), a, np.zeros((), a.dtype))


def triu(a: Any, diagonal: int = 0, **kw: Any) -> Tensor:
    """The upper triangle of the last two axes: entries (i, j) with j - i >= ``diagonal``.

    >>> import nnet
    >>> nnet.triu(nnet.ones((2, 2))).numpy()
    array([[1., 1.],
           [0., 1.]], dtype=float32)
    """
    a = _matrices("triu", a)
    k = _offset("triu", diagonal, kw)
    return where(_tri(a, k - 1), np.zeros((), a.dtype), a)


def _diagonal_index(rows: int, cols: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(max(0, -offset), min(rows, cols - offset) if cols - offset > 0 else 0)
    return i, i + offset


def diagonal(a: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of axes ``dim1`` and ``dim2`` (``offset`` above it), as a last axis.

    >>> import nnet
    >>> nnet.diagonal(nnet.eye(2)).numpy()
    array([1., 1.], dtype=float32)
    """
    return _diagonal_of(_matrices("diagonal", a), int(offset), dim1, dim2)


def _diagonal_of(a: Tensor, offset: int, dim1: int, dim2: int) -> Tensor:
    d1, d2 = _axis("diagonal", dim1, a.ndim), _axis("diagonal", dim2, a.ndim)
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 are the same axis ({d1})")
    rest = [i for i in range(a.ndim) if i not in (d1, d2)]
    moved = permute(a, *rest, d1, d2)
    i, j = _diagonal_index(a.shape[d1], a.shape[d2], offset)
    return moved[(..., i, j)]


def diag(a: Any, diagonal: int = 0) -> Tensor:
    """A 1-D ``a`` as the ``diagonal``-th diagonal of a square matrix; a matrix's diagonal as 1-D
    (NumPy's and PyTorch's diag).

    >>> import nnet
    >>> nnet.diag(nnet.tensor([1.0, 2.0])).numpy()
    array([[1., 0.],
           [0., 2.]], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    k = int(diagonal)
    if a.ndim == 2:
        return _diagonal_of(a, k, 0, 1)
    if a.ndim != 1:
        raise ValueError(f"diag: needs a 1-D or 2-D tensor, got shape {a.shape}")
    n = a.shape[0] + abs(k)
    return ScatterAdd.apply(a, _diagonal_index(n, n, k), (n, n))


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """Sum of the diagonal (of axes ``axis1``, ``axis2``, ``offset`` above it; NumPy's trace).

    >>> import nnet
    >>> nnet.trace(nnet.eye(3)).item()
    3.0
    """
    return diagonal(a, offset, axis1, axis2).sum(axis=-1)
