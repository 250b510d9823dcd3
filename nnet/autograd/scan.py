"""Cumulative sums and products along an axis, and the product reduction built on them.
Derivations: docs/derivations.md, "Scans"."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.elementwise import where
from nnet.autograd.function import Function
from nnet.autograd.reduction import Axis, _expand, _torch_names, normalize_axis
from nnet.autograd.shape import concatenate, permute, reshape
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


class Prod(Function):
    """d prod(a) = g y / a without zeros; with zeros, g times the product of the others, from
    cumulative products from both ends. See derivations.md#prod."""

    saves_output = True

    def forward(ctx, a, axes, keepdims):
        return np.prod(a, axis=axes, keepdims=keepdims)

    def vjp(ctx, grad):
        a, axes, keepdims = ctx.inputs
        g = _expand(grad, a.data.shape, axes, keepdims)
        if not (a.data == 0).any():
            return g * _expand(ctx.output, a.data.shape, axes, keepdims) / a, None, None
        return g * _product_of_others(a, axes), None, None


def _product_of_others(a: Tensor, axes: tuple[int, ...]) -> Tensor:
    """prod_{j != i} a_j over each slice, without dividing: the cumulative product before i times
    the one after i (the reduced axes moved last and merged into one)."""
    kept = [i for i in range(a.ndim) if i not in axes]
    moved = permute(a, *kept, *axes)
    lead = moved.shape[: len(kept)]
    n = int(np.prod(moved.shape[len(kept) :]))
    flat = reshape(moved, (*lead, n))
    ones = np.ones((*lead, 1), a.dtype)
    before = cumprod(concatenate([ones, flat[..., :-1]], axis=-1), -1)
    after = cumprod(concatenate([ones, flat[..., :0:-1]], axis=-1), -1)[..., ::-1]
    return permute(reshape(before * after, moved.shape), *np.argsort([*kept, *axes]).tolist())


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
    return Cumsum.apply2(a, ax)


def cumprod(a: Any, axis: int | None = None, **torch_names: Any) -> Tensor:
    """Cumulative product along ``axis`` (PyTorch: ``dim``); exact gradients with zeros.

    >>> import nnet
    >>> nnet.cumprod(nnet.tensor([1.0, 2.0, 3.0]), dim=0).numpy()
    array([1., 2., 6.], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    a, ax = _scan_axis("cumprod", a, axis, torch_names)
    return Cumprod.apply2(a, ax)


def prod(a: Any, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
    """Product over ``axis`` (all axes by default), with exact gradients where it holds zeros.

    >>> import nnet
    >>> nnet.prod(nnet.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1).numpy()
    array([ 2., 12.], dtype=float32)
    """
    axis, keepdims = _torch_names("prod", axis, keepdims, torch_names)
    a = a if isinstance(a, Tensor) else Tensor(a)
    return Prod.apply(a, normalize_axis(axis, a.ndim, "prod"), bool(keepdims))
