"""Shape primitives: views and copies that move values without arithmetic.
Derivations: docs/derivations.md, "Shape ops"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor


def shape_arg(shape: Sequence[Any]) -> tuple[int, ...]:
    """``f(2, 3)`` and ``f((2, 3))`` both mean the shape (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _as_tensor(a: Any) -> Tensor:
    return a if isinstance(a, Tensor) else Tensor(a)


class Reshape(Function):
    """d reshape(a) = reshape(g, a.shape). See derivations.md#reshape."""

    saved_inputs = "none"

    def forward(ctx, a, shape):
        return a.reshape(shape)

    def vjp(ctx, grad):
        return grad.reshape(ctx.inputs[0].data.shape), None

    vjp_arrays = (
        vjp  # the rule reads the gradient and the input's array: it serves arrays as written
    )


class Transpose(Function):
    """d transpose(a, p) = transpose(g, p^-1). See derivations.md#transpose."""

    saved_inputs = "none"

    def forward(ctx, a, axes):
        return np.transpose(a, axes)

    def vjp(ctx, grad):
        return grad.permute(tuple(np.argsort(ctx.inputs[1]))), None

    def vjp_arrays(ctx, grad):
        return grad.transpose(tuple(np.argsort(ctx.inputs[1]))), None


class BroadcastTo(Function):
    """d broadcast_to(a) = g; the engine sums it back to a's shape. See derivations.md#broadcasting."""

    saved_inputs = "none"

    def forward(ctx, a, shape):
        return np.broadcast_to(a, shape)

    def vjp(ctx, grad):
        return grad, None

    vjp_arrays = vjp


class GetItem(Function):
    """d a[i] = g scattered (added) into zeros of a's shape. See derivations.md#indexing."""

    saved_inputs = "none"

    def forward(ctx, a, index):
        return a[index]

    def vjp(ctx, grad):
        a, index = ctx.inputs
        return ScatterAdd.apply(grad, index, a.data.shape), None

    def vjp_arrays(ctx, grad):
        a, index = ctx.inputs
        return _scatter_add(grad, index, a.data.shape), None


class ScatterAdd(Function):
    """zeros(shape) with g added at ``index`` (repeats add up): the adjoint of indexing, whose VJP is
    indexing again. See derivations.md#indexing."""

    saved_inputs = "none"

    def forward(ctx, g, index, shape):
        return _scatter_add(g, index, shape)

    def vjp(ctx, grad):
        return grad[ctx.inputs[1]], None, None

    vjp_arrays = vjp


def _scatter_add(g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


def _is_basic(index: Any) -> bool:
    """Basic indexing (slices, ints, None, Ellipsis) never selects an element twice."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in items)


class Concatenate(Function):
    """d concatenate(a_1..a_k) = the matching slices of g. See derivations.md#concatenate-stack."""

    saved_inputs = "none"

    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return np.concatenate(arrays, axis=axis)

    def vjp(ctx, grad):
        axis, grads, start = ctx.axis, [], 0
        lead = (slice(None),) * axis
        for t, need in zip(ctx.inputs, ctx.needs_input_grad, strict=True):
            stop = start + t.shape[axis]
            grads.append(grad[(*lead, slice(start, stop))] if need else None)
            start = stop
        return tuple(grads)

    vjp_arrays = vjp


class Stack(Function):
    """d stack(a_1..a_k) = g[..., i, ...] for each i. See derivations.md#concatenate-stack."""

    saved_inputs = "none"

    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return np.stack(arrays, axis=axis)

    def vjp(ctx, grad):
        lead = (slice(None),) * ctx.axis
        return tuple(
            grad[(*lead, i)] if need else None for i, need in enumerate(ctx.needs_input_grad)
        )

    vjp_arrays = vjp


class Pad(Function):
    """d pad(a) = the interior slice of g. See derivations.md#pad."""

    saved_inputs = "none"

    def forward(ctx, a, pad_width, value):
        return np.pad(a, pad_width, mode="constant", constant_values=value)

    def vjp(ctx, grad):
        a, pad_width, _ = ctx.inputs
        inner = tuple(
            slice(lo, lo + n) for (lo, _hi), n in zip(pad_width, a.data.shape, strict=True)
        )
        return grad[inner], None, None

    vjp_arrays = vjp


# -- public functions ---------------------------------------------------------------------------
def reshape(a: Any, *shape: Any) -> Tensor:
    """The same values in a new shape (one axis may be -1).

    >>> import nnet
    >>> nnet.arange(6).reshape(2, -1).shape
    (2, 3)
    """
    a = _as_tensor(a)
    shape = shape_arg(shape)
    try:
        return Reshape.apply2(a, shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {a.shape} ({a.numel()} elements) into {shape}"
        ) from None


def _axis(op: str, axis: Any, ndim: int, result: bool = False) -> int:
    """One axis as a non-negative int, with a clear error when it is out of range: taking it modulo
    ``ndim`` would silently pick another axis (``transpose(0, 5)`` of a matrix was the identity)."""
    if not -ndim <= axis < max(ndim, 1):
        what = "a result" if result else "a tensor"
        raise ValueError(f"{op}: axis {axis} is out of range for {what} with {ndim} dimensions")
    return int(axis) % max(ndim, 1)


def flatten(a: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim`` through ``end_dim`` into one."""
    a = _as_tensor(a)
    if a.ndim == 0:
        return a.reshape(1)
    s, e = _axis("flatten", start_dim, a.ndim), _axis("flatten", end_dim, a.ndim)
    merged = int(np.prod(a.shape[s : e + 1]))  # not -1: ambiguous when another axis is empty
    return a.reshape(a.shape[:s] + (merged,) + a.shape[e + 1 :]) if s <= e else a


def transpose(a: Any, *dims: Any) -> Tensor:
    """Swap two dimensions, as PyTorch's ``transpose(dim0, dim1)``.

    NumPy's ``transpose(axes)`` (a full permutation, or all axes reversed when none are given) is
    PyTorch's :func:`permute` (or ``.T``); such a call raises rather than compute something else.

    >>> import nnet
    >>> nnet.ones((2, 3, 4)).transpose(0, 2).shape
    (4, 3, 2)
    """
    a = _as_tensor(a)
    if len(dims) != 2 or not all(isinstance(d, (int, np.integer)) for d in dims):
        raise TypeError(
            f"transpose: takes two dims to swap (PyTorch's meaning), got {dims}; for a full "
            "permutation of the axes (NumPy's transpose) use .permute(*axes), or .T to reverse them"
        )
    return _swap("transpose", a, *dims)


def permute(a: Any, *dims: Any) -> Tensor:
    """Reorder all axes: axis ``dims[i]`` of ``a`` becomes axis ``i`` (NumPy's ``transpose(axes)``).

    >>> import nnet
    >>> nnet.ones((2, 3, 4)).permute(2, 0, 1).shape
    (4, 2, 3)
    """
    a = _as_tensor(a)
    perm = shape_arg(dims)
    axes = tuple(_axis("permute", p, a.ndim) for p in perm)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"permute: dims {perm} are not a permutation of {a.ndim} axes")
    return Transpose.apply2(a, axes)


def reverse_axes(a: Any) -> Tensor:
    """All axes reversed (``.T``)."""
    a = _as_tensor(a)
    return Transpose.apply(a, tuple(range(a.ndim))[::-1])


def swapaxes(a: Any, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes."""
    return _swap("swapaxes", _as_tensor(a), axis1, axis2)


def _swap(op: str, a: Tensor, axis1: int, axis2: int) -> Tensor:
    perm = list(range(a.ndim))
    axis1, axis2 = _axis(op, axis1, a.ndim), _axis(op, axis2, a.ndim)
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return Transpose.apply(a, tuple(perm))


def squeeze(a: Any, axis: Any = None, **torch_names: Any) -> Tensor:
    """Remove size-1 axes (all of them, or the given ones)."""
    a = _as_tensor(a)
    axis = torch_names.pop("dim", axis)
    if axis is None:
        return a.reshape(tuple(n for n in a.shape if n != 1))
    axes = {_axis("squeeze", x, a.ndim) for x in ((axis,) if isinstance(axis, int) else axis)}
    for x in axes:
        if a.shape[x] != 1:
            raise ValueError(f"squeeze: axis {x} has size {a.shape[x]}, not 1 (shape {a.shape})")
    return a.reshape(tuple(n for i, n in enumerate(a.shape) if i not in axes))


def unsqueeze(a: Any, axis: int) -> Tensor:
    """Insert a size-1 axis at ``axis``."""
    a = _as_tensor(a)
    at = _axis("unsqueeze", axis, a.ndim + 1, result=True)
    return a.reshape(a.shape[:at] + (1,) + a.shape[at:])


expand_dims = unsqueeze


def broadcast_to(a: Any, shape: Sequence[int]) -> Tensor:
    """``a`` repeated along new or size-1 axes to ``shape`` (a read-only view)."""
    a = _as_tensor(a)
    shape = tuple(shape)
    if a.shape == shape:
        return a
    try:
        np.broadcast_shapes(a.shape, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}") from None
    return BroadcastTo.apply2(a, shape)


def _index_value(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        arr = np.asarray(index)
        return arr if arr.size else arr.astype(np.intp)  # [] selects nothing, as in NumPy
    return index


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]`` with slices, ints, None, Ellipsis, integer arrays (repeats allowed) and bool masks."""
    index = _index_value(index)
    try:
        return GetItem.apply2(a, index)
    except IndexError as e:
        raise IndexError(f"indexing a tensor of shape {a.shape} with {index!r}: {e}") from None


def concatenate(tensors: Sequence[Any], axis: int = 0, **torch_names: Any) -> Tensor:
    """Join tensors along an existing axis."""
    axis = torch_names.pop("dim", axis)
    ts = [_as_tensor(t) for t in tensors]
    if not ts:
        raise ValueError("concatenate: need at least one tensor")
    ax = _axis("concatenate", axis, ts[0].ndim)
    for t in ts[1:]:
        if t.ndim != ts[0].ndim or any(
            n != m for i, (n, m) in enumerate(zip(t.shape, ts[0].shape, strict=True)) if i != ax
        ):
            raise ValueError(
                f"concatenate: shapes {[u.shape for u in ts]} differ outside axis {axis}"
            )
    return Concatenate.apply(*ts, axis=ax)


cat = concatenate


def stack(tensors: Sequence[Any], axis: int = 0, **torch_names: Any) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    axis = torch_names.pop("dim", axis)
    ts = [_as_tensor(t) for t in tensors]
    if not ts:
        raise ValueError("stack: need at least one tensor")
    if any(t.shape != ts[0].shape for t in ts):
        raise ValueError(f"stack: all tensors need the same shape, got {[t.shape for t in ts]}")
    return Stack.apply(*ts, axis=_axis("stack", axis, ts[0].ndim + 1, result=True))


def pad(a: Any, pad_width: Any, value: float = 0.0) -> Tensor:
    """Constant padding with NumPy's ``pad_width`` ((before, after) per axis, or one pair for all)."""
    a = _as_tensor(a)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (a.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: widths must be non-negative, got {pad_width}")
    return Pad.apply(a, tuple((int(lo), int(hi)) for lo, hi in widths), value)
