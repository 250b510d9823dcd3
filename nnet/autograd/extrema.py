"""PyTorch's max, min, amax, amin, argmax and argmin over the Max and Min primitives.

``max(dim)`` and ``min(dim)`` return ``(values, indices)``; ``amax`` / ``amin`` reduce one or several
axes to the values alone (what NumPy's ``max(axis)`` does).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nnet.autograd.elementwise import maximum, minimum
from nnet.autograd.function import Function
from nnet.autograd.reduction import Axis, Max, Min, _reduce, _torch_names, normalize_axis
from nnet.autograd.tensor import Tensor


class ValuesIndices(NamedTuple):
    """``max(dim)`` / ``min(dim)``'s result, PyTorch's ``(values, indices)`` named tuple.

    It refuses to become an array, so arithmetic on it fails instead of stacking the two fields."""

    values: Tensor
    indices: Tensor

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "max/min with a dim return (values, indices) as in PyTorch, not a tensor; "
            "use .values, or amax/amin for the values alone"
        )


def _extreme_dim(
    cls: type[Function], op: str, a: Any, dim: Any, keepdim: bool, kw: dict
) -> Tensor | ValuesIndices:
    """PyTorch's max/min: over everything without ``dim``; ``(values, indices)`` along one ``dim``;
    elementwise against another tensor (``max(a, b)``)."""
    if "axis" in kw:  # NumPy's spelling, which PyTorch also accepts
        dim = kw.pop("axis")
    if "keepdims" in kw:
        keepdim = kw.pop("keepdims")
    dim, keepdim = _torch_names(op, dim, keepdim, kw)
    a = a if isinstance(a, Tensor) else Tensor(a)
    if isinstance(dim, Tensor):
        return (maximum if op == "max" else minimum)(a, dim)
    if dim is None:
        return cls.apply(a, normalize_axis(None, a.ndim, op), False)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(
            f"{op}: dim must be one int (PyTorch's {op}(dim) returns values and indices along one "
            f"dim), got {dim!r}; use a{op}(dim={dim!r}) to reduce several dims"
        )
    axes = normalize_axis(dim, a.ndim, op)
    values = cls.apply(a, axes, bool(keepdim))
    pick = np.argmax if op == "max" else np.argmin
    indices = pick(a.data, axis=axes[0] if a.ndim else None, keepdims=bool(keepdim))
    return ValuesIndices(values, Tensor._make(np.asarray(indices, dtype=np.int64), False, None))


def max(a: Any, dim: Any = None, keepdim: bool = False, **numpy_names: Any) -> Any:
    """PyTorch's ``max``: the maximum of all elements; ``(values, indices)`` along ``dim``; or the
    elementwise :func:`maximum` when ``dim`` is a tensor. With ties the gradient and the index go
    to the first maximal element.

    >>> import nnet
    >>> values, indices = nnet.tensor([[1.0, 3.0], [4.0, 2.0]]).max(1)
    >>> indices.tolist()
    [1, 0]
    """
    return _extreme_dim(Max, "max", a, dim, keepdim, numpy_names)


def min(a: Any, dim: Any = None, keepdim: bool = False, **numpy_names: Any) -> Any:
    """PyTorch's ``min``: as :func:`max`, with minima."""
    return _extreme_dim(Min, "min", a, dim, keepdim, numpy_names)


def amax(a: Any, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
    """Maximum over ``axis`` (one or several, all by default), values only; with ties the gradient
    goes to the first maximal element.

    >>> import nnet
    >>> nnet.amax(nnet.ones((2, 3, 4)), dim=(1, 2)).shape
    (2,)
    """
    return _reduce(Max, "amax", a, axis, keepdims, torch_names)


def amin(a: Any, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
    """Minimum over ``axis``, values only; with ties the gradient goes to the first minimum."""
    return _reduce(Min, "amin", a, axis, keepdims, torch_names)


def _arg_extreme(op: str, a: Any, dim: Any, keepdim: bool, kw: dict) -> Tensor:
    if "axis" in kw:
        dim = kw.pop("axis")
    if "keepdims" in kw:
        keepdim = kw.pop("keepdims")
    dim, keepdim = _torch_names(op, dim, keepdim, kw)
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    if dim is not None:
        dim = normalize_axis(dim, data.ndim, op)[0] if data.ndim else None
    pick = np.argmax if op == "argmax" else np.argmin
    return Tensor._make(
        np.asarray(pick(data, axis=dim, keepdims=bool(keepdim)), np.int64), False, None
    )


def argmax(a: Any, dim: int | None = None, keepdim: bool = False, **numpy_names: Any) -> Tensor:
    """Index (int64) of the first maximum along ``dim``, or in the flattened tensor without it.

    >>> import nnet
    >>> nnet.argmax(nnet.tensor([[1.0, 3.0], [4.0, 2.0]]), dim=1).tolist()
    [1, 0]
    """
    return _arg_extreme("argmax", a, dim, keepdim, numpy_names)


def argmin(a: Any, dim: int | None = None, keepdim: bool = False, **numpy_names: Any) -> Tensor:
    """Index (int64) of the first minimum along ``dim``, or in the flattened tensor without it."""
    return _arg_extreme("argmin", a, dim, keepdim, numpy_names)
