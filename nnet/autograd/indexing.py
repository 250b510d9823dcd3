"""Sorting and gathering along an axis, composed from indexing: sort, argsort, topk, gather,
take_along_axis, scatter_add. Derivations: docs/derivations.md, "Sorting and gathering"."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nnet.autograd.shape import ScatterAdd, _axis, reshape
from nnet.autograd.tensor import Tensor


class SortResult(NamedTuple):
    """What sort and topk return, as PyTorch's ``(values, indices)``."""

    values: Tensor
    indices: Tensor


def _as_tensor(a: Any) -> Tensor:
    return a if isinstance(a, Tensor) else Tensor(a)


def _index_array(op: str, index: Any, ndim: int) -> np.ndarray:
    idx = np.asarray(index.data if isinstance(index, Tensor) else index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: the index must hold integers, got dtype {idx.dtype}")
    if idx.ndim != ndim:
        raise ValueError(
            f"{op}: the index needs as many axes as the input ({ndim}), got shape {idx.shape}"
        )
    return idx


def _along(idx: np.ndarray, axis: int, sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The full index that picks ``idx`` along ``axis`` and position i along every other axis i
    (``sizes`` gives their lengths, broadcast against ``idx``)."""
    ndim = idx.ndim
    return tuple(
        idx
        if d == axis
        else np.arange(sizes[d]).reshape([-1 if i == d else 1 for i in range(ndim)])
        for d in range(ndim)
    )


def _pick(op: str, a: Tensor, index: tuple[np.ndarray, ...]) -> Tensor:
    try:
        return a[index]
    except IndexError as e:
        raise IndexError(f"{op}: an index is out of range for shape {a.shape} ({e})") from None


def take_along_axis(a: Any, indices: Any, axis: int | None = -1, **kw: Any) -> Tensor:
    """NumPy's take_along_axis (PyTorch's take_along_dim): ``indices`` along ``axis``, broadcast
    against ``a`` on the other axes; over the flattened tensor when ``axis`` is None.

    >>> import nnet, numpy as np
    >>> x = nnet.tensor([[3.0, 1.0], [2.0, 4.0]])
    >>> nnet.take_along_axis(x, np.array([[1], [0]]), axis=1).numpy()
    array([[1.],
           [2.]], dtype=float32)
    """
    a = _as_tensor(a)
    axis = kw.pop("dim", axis)
    if kw:
        raise TypeError(f"take_along_axis: unexpected argument(s) {sorted(kw)}")
    if axis is None:
        a, axis = reshape(a, -1), 0
    idx = _index_array("take_along_axis", indices, a.ndim)
    axis = _axis("take_along_axis", axis, a.ndim)
    try:
        shape = np.broadcast_shapes(idx.shape, a.shape[:axis] + (1,) + a.shape[axis + 1 :])
    except ValueError:
        raise ValueError(
            f"take_along_axis: index shape {idx.shape} does not broadcast against {a.shape} "
            f"outside axis {axis}"
        ) from None
    idx = np.broadcast_to(idx, shape[:axis] + idx.shape[axis : axis + 1] + shape[axis + 1 :])
    return _pick("take_along_axis", a, _along(idx, axis, idx.shape))


def _gather_index(op: str, a: Tensor, dim: int, index: Any) -> tuple[int, tuple[np.ndarray, ...]]:
    idx = _index_array(op, index, a.ndim)
    dim = _axis(op, dim, a.ndim)
    if any(n > m for d, (n, m) in enumerate(zip(idx.shape, a.shape, strict=True)) if d != dim):
        raise ValueError(
            f"{op}: index shape {idx.shape} is larger than the input's {a.shape} outside dim {dim}"
        )
    return dim, _along(idx, dim, idx.shape)


def gather(a: Any, dim: int, index: Any) -> Tensor:
    """PyTorch's gather: ``out[i][j] = a[index[i][j]][j]`` for dim 0 (and so on); the output has
    ``index``'s shape.

    >>> import nnet, numpy as np
    >>> nnet.gather(nnet.tensor([[1.0, 2.0], [3.0, 4.0]]), 1, np.array([[0, 0], [1, 0]])).numpy()
    array([[1., 1.],
           [4., 3.]], dtype=float32)
    """
    a = _as_tensor(a)
    _, full = _gather_index("gather", a, dim, index)
    return _pick("gather", a, full)


def scatter_add(a: Any, dim: int, index: Any, src: Any) -> Tensor:
    """PyTorch's scatter_add: ``a`` with ``src[i][j]`` added at ``[index[i][j]][j]`` for dim 0 (and
    so on); repeated indices add up. Differentiable in ``a`` and ``src``.

    >>> import nnet, numpy as np
    >>> nnet.scatter_add(nnet.zeros(3), 0, np.array([0, 2, 0]), nnet.ones(3)).numpy()
    array([2., 0., 1.], dtype=float32)
    """
    a, src = _as_tensor(a), _as_tensor(src)
    dim, full = _gather_index("scatter_add", a, dim, index)
    shape = full[dim].shape
    if src.ndim != a.ndim or any(n > m for n, m in zip(shape, src.shape, strict=True)):
        raise ValueError(f"scatter_add: src of shape {src.shape} is smaller than the index {shape}")
    used = src[tuple(slice(0, n) for n in shape)]
    if full[dim].size and ((full[dim] >= a.shape[dim]) | (full[dim] < -a.shape[dim])).any():
        raise IndexError(f"scatter_add: an index is out of range for dim {dim} of shape {a.shape}")
    return a + ScatterAdd.apply(used, full, a.shape)


def _sort_order(x: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable: equal values keep their order, NaN counts as the largest (as PyTorch)."""
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    # the stable ascending order of the reversed axis, read backwards: descending, ties in order
    n = x.shape[axis]
    rev = np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
    return (n - 1 - rev).astype(np.int64, copy=False)


def argsort(a: Any, dim: int = -1, descending: bool = False, **kw: Any) -> Tensor:
    """The indices that sort ``a`` along ``dim`` (stable); an int64 tensor outside the graph."""
    a = _as_tensor(a)
    dim = kw.pop("axis", dim)
    kw.pop("stable", None)  # always stable
    if kw:
        raise TypeError(f"argsort: unexpected argument(s) {sorted(kw)}")
    if a.ndim == 0:
        return Tensor(np.zeros((), np.int64))
    order = _sort_order(a.data, _axis("argsort", dim, a.ndim), bool(descending))
    return Tensor(order.astype(np.int64, copy=False))


def sort(a: Any, dim: int = -1, descending: bool = False, **kw: Any) -> SortResult:
    """Values sorted along ``dim`` and their original indices (PyTorch's ``(values, indices)``);
    stable, so the gradient of tied values follows their original order.

    >>> import nnet
    >>> nnet.sort(nnet.tensor([3.0, 1.0, 2.0])).values.numpy()
    array([1., 2., 3.], dtype=float32)
    """
    a = _as_tensor(a)
    indices = argsort(a, dim, descending, **kw)
    if a.ndim == 0:
        return SortResult(a[...], indices)
    dim = _axis("sort", kw.get("axis", dim), a.ndim)
    return SortResult(take_along_axis(a, indices.data, dim), indices)


def topk(a: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> SortResult:
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, largest first; among
    equal values the lower index comes first.

    >>> import nnet
    >>> nnet.topk(nnet.tensor([1.0, 3.0, 2.0]), 2).indices.numpy()
    array([1, 2])
    """
    a = _as_tensor(a)
    if a.ndim == 0:
        a = reshape(a, 1)
    d = _axis("topk", dim, a.ndim)
    if not 0 <= k <= a.shape[d]:
        raise ValueError(f"topk: k={k} is out of range for dim {d} of length {a.shape[d]}")
    values, indices = sort(a, d, descending=largest)
    keep = (slice(None),) * d + (slice(0, k),)
    return SortResult(values[keep], Tensor(indices.data[keep]))
