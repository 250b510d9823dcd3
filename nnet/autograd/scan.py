"""Cumulative sums and products along an axis, and the product reduction built on them.
Derivations: docs/derivations.md, "Scans"."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.elementwise import where
from nnet.autograd.function import Function
from nnet.autograd.reduction import Axis, _torch_names, normalize_axis
from nnet.autograd.shape import concatenate, reshape, transpose
from nnet.autograd.tensor import Tensor


def _reversed(axis: int, ndim: int) -> tuple[slice, ...]:
    """The index that reverses ``axis``: a view for arrays, a GetItem for tensors."""
    return (slice(None),) * axis + (slice(None, None, -1),) + (slice(None),) * (ndim - axis - 1)


def _reverse_cumsum(g: Any, axis: int) -> Any:
    """sum_{i >= k} g_i along ``axis``, for tensors (recorded) and arrays alike."""
    rev = _reversed(axis, g.ndim)
    if isinstance(g, Tensor):
        return cumsum(g[rev], axis)[rev]
    return np.cumsum(g[rev], axis)[rev]


class Cumsum(Function):
    """d cumsum(a) = the reverse cumulative sum of g. See derivations.md#cumsum."""

    def forward(ctx, a, axis):
        return np.cumsum(a, axis)

    def vjp(ctx, grad):
        return _reverse_cumsum(grad, ctx.inputs[1]), None

    vjp_arrays = vjp


class Cumprod(Function):
    """d cumprod(a)_k = sum_{i >= k} g_i y_i / a_k before a slice's first zero, the same sum with that
    zero replaced by 1 at it, and 0 after it. See derivations.md#cumprod."""

    saves_output = True

    def forward(ctx, a, axis):
        return np.cumprod(a, axis)

    def vjp(ctx, grad):
        a, axis = ctx.inputs
        zero = a.data == 0
        seen = np.cumsum(zero, axis)  # zeros at or before each position
        before = seen == 0
        term = _reverse_cumsum(grad * ctx.output, axis) / where(before, a, 1.0)
        if before.all():
            return term, None
        first = zero & (seen == 1)
        at_zero = _reverse_cumsum(grad * cumprod(where(first, 1.0, a), axis), axis)
        return where(before, term, where(first, at_zero, 0.0)), None


# -- public functions ---------------------------------------------------------------------------
def _scan_axis(op: str, a: Tensor, axis: Any, kw: dict) -> tuple[Tensor, int]:
    """The axis of a scan; ``None`` scans the flattened tensor, as NumPy."""
    axis, _ = _torch_names(op, axis, False, kw)
    if axis is None:
        return reshape(a, -1), 0
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: axis must be one int or None, got {axis!r}")
    return a, normalize_axis(axis, a.ndim, op)[0] if a.ndim else 0


def cumsum(a: Any, axis: int | None = None, **torch_names: Any) -> Tensor:
    """Cumulative sum along ``axis`` (PyTorch: ``dim``); over the flattened tensor when None.

    >>> import nnet
    >>> nnet.cumsum(nnet.tensor([1.0, 2.0, 3.0]), dim=0).numpy()
    array([1., 3., 6.], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    a, ax = _scan_axis("cumsum", a, axis, torch_names)
    return Cumsum.apply(a, ax)


def cumprod(a: Any, axis: int | None = None, **torch_names: Any) -> Tensor:
    """Cumulative product along ``axis`` (PyTorch: ``dim``); exact gradients with zeros.

    >>> import nnet
    >>> nnet.cumprod(nnet.tensor([1.0, 2.0, 3.0]), dim=0).numpy()
    array([1., 2., 6.], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    a, ax = _scan_axis("cumprod", a, axis, torch_names)
    return Cumprod.apply(a, ax)


def prod(a: Any, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
    """Product over ``axis`` (all axes by default), the last entry of a cumulative product, so its
    gradient is exact with zeros (see derivations.md#prod).

    >>> import nnet
    >>> nnet.prod(nnet.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1).numpy()
    array([ 2., 12.], dtype=float32)
    """
    axis, keepdims = _torch_names("prod", axis, keepdims, torch_names)
    a = a if isinstance(a, Tensor) else Tensor(a)
    axes = normalize_axis(axis, a.ndim, "prod")
    kept = [i for i in range(a.ndim) if i not in axes]
    moved = transpose(a, *kept, *axes) if a.ndim else a
    lead = tuple(a.shape[i] for i in kept)
    n = int(np.prod([a.shape[i] for i in axes]))
    flat = reshape(moved, (*lead, n))
    if n == 0:  # the empty product is 1: a column of ones keeps the result in the graph
        flat = concatenate([np.ones((*lead, 1), a.dtype), flat], axis=-1)
    out = cumprod(flat, -1)[..., -1]
    if keepdims:
        out = reshape(out, tuple(1 if i in axes else s for i, s in enumerate(a.shape)))
    return out
