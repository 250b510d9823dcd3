"""Reductions over axes, softmax and its relatives. Derivations: docs/derivations.md, "Reductions".

Every reduction takes ``axis`` (int, tuple or None) and ``keepdims``, or PyTorch's ``dim`` / ``keepdim``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.kernels import sum_axes as _sum
from nnet.autograd.tensor import Tensor

Axis = int | Sequence[int] | None


def normalize_axis(axis: Axis | np.integer, ndim: int, op: str) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; a clear error for an axis out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _torch_names(op: str, axis: Any, keepdims: bool, kw: dict[str, Any]) -> tuple[Any, bool]:
    """Accept PyTorch's ``dim`` / ``keepdim`` spellings beside NumPy's."""
    if "dim" in kw:
        axis = kw.pop("dim")
    if "keepdim" in kw:
        keepdims = kw.pop("keepdim")
    if kw:
        raise TypeError(f"{op}: unexpected argument(s) {sorted(kw)}")
    return axis, keepdims


def _expand(
    grad: Tensor, in_shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool
) -> Tensor:
    """Reinsert the reduced axes as size 1 so ``grad`` broadcasts against the input."""
    if keepdims or not axes:
        return grad
    shape = list(in_shape)
    for a in axes:
        shape[a] = 1
    return grad.reshape(tuple(shape))


def _extreme(a: np.ndarray, axes: tuple[int, ...], keepdims: bool, ufunc: np.ufunc) -> np.ndarray:
    """max/min over ``axes``; a few small inner axes (a pooling window) go as elementwise ops over
    strided slices, which is 5-8x faster than NumPy's reduce over non-trailing axes."""
    if _small_inner(a, axes):
        slices = _slices(a, axes)
        out = np.array(next(slices), copy=True)
        for s in slices:
            ufunc(out, s, out=out)
        return np.expand_dims(out, axes) if keepdims else out
    return ufunc.reduce(a, axis=axes, keepdims=keepdims)


def _small_inner(a: np.ndarray, axes: tuple[int, ...]) -> bool:
    """A few small axes that are not the last one: cheaper as a loop over slices than as a reduce."""
    if not 0 < len(axes) < a.ndim or axes[-1] == a.ndim - 1:
        return False
    return 1 < int(np.prod([a.shape[i] for i in axes])) <= 64


def _slices(a: np.ndarray, axes: tuple[int, ...]) -> Any:
    """The views a[..., i, ..., j, ...] over every position of ``axes``, in row-major order."""
    for pos in np.ndindex(*[a.shape[i] for i in axes]):
        index: list[Any] = [slice(None)] * a.ndim
        for ax, p in zip(axes, pos, strict=True):
            index[ax] = p
        yield a[tuple(index)]


class Sum(Function):
    """d sum(a) = g broadcast back over the reduced axes. See derivations.md#sum-mean."""

    saved_inputs = "none"

    def forward(ctx, a, axes, keepdims):
        return _sum(a, axes, keepdims)

    def vjp(ctx, grad):
        a, axes, keepdims = ctx.inputs
        g = _expand(grad, a.data.shape, axes, keepdims)
        return broadcast_to(g, a.data.shape), None, None

    def vjp_arrays(ctx, grad):
        a, axes, keepdims = ctx.inputs
        return (
            np.broadcast_to(_expand(grad, a.data.shape, axes, keepdims), a.data.shape),
            None,
            None,
        )


class Mean(Function):
    """d mean(a) = g / n broadcast back. See derivations.md#sum-mean."""

    saved_inputs = "none"

    def forward(ctx, a, axes, keepdims):
        n = int(np.prod([a.shape[i] for i in axes]))
        out = _sum(a, axes, keepdims)
        return out / n if n else np.mean(a, axis=axes, keepdims=keepdims)

    def vjp(ctx, grad):
        a, axes, keepdims = ctx.inputs
        n = int(np.prod([a.data.shape[i] for i in axes])) if axes else 1
        g = _expand(grad, a.data.shape, axes, keepdims)
        return broadcast_to(g / builtins.max(n, 1), a.data.shape), None, None

    def vjp_arrays(ctx, grad):
        a, axes, keepdims = ctx.inputs
        n = int(np.prod([a.data.shape[i] for i in axes])) if axes else 1
        g = _expand(grad, a.data.shape, axes, keepdims) / builtins.max(n, 1)
        return np.broadcast_to(g, a.data.shape), None, None


class Var(Function):
    """d var(a) = g 2 (a - mean a) / (n - ddof). See derivations.md#var."""

    def forward(ctx, a, axes, ddof, keepdims):
        n = int(np.prod([a.shape[i] for i in axes]))
        if n - ddof <= 0:
            return np.var(a, axis=axes, ddof=ddof, keepdims=keepdims)  # NaN, as NumPy
        centred = a - _sum(a, axes, True) / n
        return _sum(centred * centred, axes, keepdims) / (n - ddof)

    def vjp(ctx, grad):
        a, axes, ddof, keepdims = ctx.inputs
        n = int(np.prod([a.data.shape[i] for i in axes])) if axes else 1
        g = _expand(grad, a.data.shape, axes, keepdims)
        centred = a - a.mean(axis=axes, keepdims=True)
        scale = 2.0 / (n - ddof) if n > ddof else np.nan  # NaN like the forward, not an exception
        return g * centred * scale, None, None, None

    def vjp_arrays(ctx, grad):
        a, axes, ddof, keepdims = ctx.inputs
        x = a.data
        n = int(np.prod([x.shape[i] for i in axes])) if axes else 1
        g = _expand(grad, x.shape, axes, keepdims)
        centred = x - x.mean(axis=axes, keepdims=True)
        scale = 2.0 / (n - ddof) if n > ddof else np.nan
        return g * centred * scale, None, None, None


def _first_extreme_mask(
    x: np.ndarray, axes: tuple[int, ...], pick: Any, extreme: np.ndarray, keepdims: bool
) -> np.ndarray:
    """One True per reduced slice, at the first position of its max (or min) ``extreme``; in a slice
    holding a NaN (whose extreme is NaN), at its first NaN, as ``np.argmax`` picks."""
    if not axes:
        return np.ones(x.shape, dtype=bool)
    if _small_inner(x, axes):
        ext = np.squeeze(extreme, axis=axes) if keepdims else extreme
        nan = np.isnan(ext)
        if not nan.any():  # the usual case: one comparison per position
            nan = None
        mask = np.zeros(x.shape, dtype=bool)
        found = np.zeros(ext.shape, dtype=bool)
        for s, m in zip(_slices(x, axes), _slices(mask, axes), strict=True):
            hit = s == ext  # False for NaN == NaN: a NaN slice is matched by isnan below
            if nan is not None:
                hit |= nan & np.isnan(s)
            np.logical_and(hit, ~found, out=m)
            found |= m
        return mask
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, rest + list(axes))
    # the slice length is spelled out: -1 is ambiguous when a kept axis is empty
    flat = moved.reshape(moved.shape[: len(rest)] + (int(np.prod(moved.shape[len(rest) :])),))
    idx = pick(flat, axis=-1)
    mask = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(mask, idx[..., None], True, axis=-1)
    return np.transpose(mask.reshape(moved.shape), np.argsort(rest + list(axes)))


class Max(Function):
    """d max(a) = g at the first maximal element of each slice, 0 elsewhere. See
    derivations.md#max-min."""

    saves_output = True

    def forward(ctx, a, axes, keepdims):
        return _extreme(a, axes, keepdims, np.maximum)

    def vjp(ctx, grad):
        a, axes, keepdims = ctx.inputs
        mask = _first_extreme_mask(a.data, axes, np.argmax, ctx.output.data, keepdims)
        return _expand(grad, a.data.shape, axes, keepdims) * mask, None, None

    vjp_arrays = vjp  # reads the input's array: the same code serves arrays


class Min(Function):
    """d min(a) = g at the first minimal element of each slice. See derivations.md#max-min."""

    saves_output = True

    def forward(ctx, a, axes, keepdims):
        return _extreme(a, axes, keepdims, np.minimum)

    def vjp(ctx, grad):
        a, axes, keepdims = ctx.inputs
        mask = _first_extreme_mask(a.data, axes, np.argmin, ctx.output.data, keepdims)
        return _expand(grad, a.data.shape, axes, keepdims) * mask, None, None

    vjp_arrays = vjp


def stable_shift(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The max over ``axes`` (keepdims), 0 where it is not finite, so exp(a - m) never overflows."""
    m = np.max(a, axis=axes, keepdims=True, initial=-np.inf)  # -inf, then 0, over an empty axis
    return np.where(np.isfinite(m), m, 0)


class LogSumExp(Function):
    """d logsumexp(a) = g softmax(a), from the saved output. See derivations.md#logsumexp."""

    saves_output = True

    def forward(ctx, a, axes, keepdims):
        m = stable_shift(a, axes)
        with np.errstate(divide="ignore"):
            out = np.log(np.add.reduce(np.exp(a - m), axis=axes, keepdims=True)) + m
        return out if keepdims else np.squeeze(out, axis=axes)

    def vjp(ctx, grad):
        a, axes, keepdims = ctx.inputs
        lse = _expand(ctx.output, a.data.shape, axes, keepdims)
        return _expand(grad, a.data.shape, axes, keepdims) * exp(a - lse), None, None

    def vjp_arrays(ctx, grad):
        a, axes, keepdims = ctx.inputs
        lse = _expand(ctx.output.data, a.data.shape, axes, keepdims)
        return _expand(grad, a.data.shape, axes, keepdims) * np.exp(a.data - lse), None, None


class Softmax(Function):
    """d softmax = s (g - sum(g s)), from the saved output s. See derivations.md#softmax."""

    saves_output = True

    def forward(ctx, a, axis):
        e = np.exp(a - stable_shift(a, (axis,)))
        e /= np.add.reduce(e, axis=axis, keepdims=True)
        return e

    def vjp(ctx, grad):
        s = ctx.output
        axis = ctx.inputs[1]
        return s * (grad - (grad * s).sum(axis=axis, keepdims=True)), None

    def vjp_arrays(ctx, grad):
        s = ctx.output.data
        axis = ctx.inputs[1]
        return s * (grad - (grad * s).sum(axis=axis, keepdims=True)), None


class LogSoftmax(Function):
    """d log_softmax = g - softmax sum(g), from the saved output. See derivations.md#log-softmax."""

    saves_output = True

    def forward(ctx, a, axis):
        shifted = a - stable_shift(a, (axis,))
        if not a.shape[axis]:
            return shifted  # empty along the axis: nothing to normalise (and no log(0) warning)
        return shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))

    def vjp(ctx, grad):
        axis = ctx.inputs[1]
        return grad - exp(ctx.output) * grad.sum(axis=axis, keepdims=True), None

    def vjp_arrays(ctx, grad):
        axis = ctx.inputs[1]
        return grad - np.exp(ctx.output.data) * grad.sum(axis=axis, keepdims=True), None


# -- public functions ---------------------------------------------------------------------------
def _reduce(cls: type[Function], op: str, a: Any, axis: Axis, keepdims: bool, kw: dict) -> Tensor:
    axis, keepdims = _torch_names(op, axis, keepdims, kw)
    a = a if isinstance(a, Tensor) else Tensor(a)
    return cls.apply(a, normalize_axis(axis, a.ndim, op), bool(keepdims))


def sum(a: Any, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
    """Sum over ``axis`` (all axes by default).

    >>> import nnet
    >>> nnet.sum(nnet.ones((2, 3)), axis=0).numpy()
    array([2., 2., 2.], dtype=float32)
    """
    return _reduce(Sum, "sum", a, axis, keepdims, torch_names)


def mean(a: Any, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
    """Arithmetic mean over ``axis``."""
    return _reduce(Mean, "mean", a, axis, keepdims, torch_names)


def _correction(op: str, ddof: Any, kw: dict[str, Any]) -> int | float:
    """The divisor's correction, ``n - correction``: PyTorch's ``correction=1`` unless one of
    ``correction=``, ``unbiased=`` (PyTorch's older spelling) or ``ddof=`` (NumPy's) says otherwise."""
    given = {name: kw.pop(name) for name in ("correction", "unbiased") if name in kw}
    if ddof is not None:
        given["ddof"] = ddof
    if len(given) > 1:
        raise TypeError(
            f"{op}: {' and '.join(given)} both set the correction; pass one of them "
            f"(correction=0 is NumPy's ddof=0, the biased estimate; correction=1 the unbiased)"
        )
    name, value = given.popitem() if given else ("correction", 1)
    if name == "unbiased" or isinstance(value, bool | np.bool_):
        return int(bool(value))
    if value is None:  # PyTorch's correction=None is its default
        return 1
    if not isinstance(value, int | float | np.integer | np.floating) or value < 0:
        raise ValueError(f"{op}: {name} must be a non-negative number, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def var(a: Any, axis: Axis = None, ddof: Any = None, keepdims: bool = False, **kw: Any) -> Tensor:
    """Variance over ``axis``: ``sum((a - mean)^2) / (n - correction)``, with PyTorch's default
    ``correction=1`` (the unbiased estimate). ``correction=0`` (or ``unbiased=False``, or NumPy's
    ``ddof=0``) gives the biased one, NumPy's default; ``np.var(tensor)`` keeps NumPy's default.
    The third positional argument is PyTorch's ``unbiased`` or NumPy's ``ddof`` (they agree).

    >>> import nnet
    >>> x = nnet.tensor([1.0, 3.0])
    >>> x.var().item(), x.var(correction=0).item(), x.var(unbiased=False).item()
    (2.0, 1.0, 1.0)
    """
    correction = _correction("var", ddof, kw)
    axis, keepdims = _torch_names("var", axis, keepdims, kw)
    a = a if isinstance(a, Tensor) else Tensor(a)
    return Var.apply(a, normalize_axis(axis, a.ndim, "var"), correction, bool(keepdims))


def std(a: Any, axis: Axis = None, ddof: Any = None, keepdims: bool = False, **kw: Any) -> Tensor:
    """Standard deviation over ``axis``: ``sqrt(var(a, axis, ...))`` with :func:`var`'s arguments,
    so PyTorch's default ``correction=1`` (``correction=0`` or ``ddof=0`` for NumPy's). Where the
    variance is 0 the gradient is 0, as PyTorch's, not sqrt's infinite slope (see
    derivations.md#std).

    >>> import nnet
    >>> nnet.std(nnet.tensor([1.0, 3.0]), correction=0).item()
    1.0
    >>> round(nnet.std(nnet.tensor([1.0, 3.0])).item(), 4)
    1.4142
    """
    correction = _correction("std", ddof, kw)
    axis, keepdims = _torch_names("std", axis, keepdims, kw)
    a = a if isinstance(a, Tensor) else Tensor(a)
    v = var(a, normalize_axis(axis, a.ndim, "std"), correction, keepdims)
    # the root only where v != 0 (NaN included): both branches of `where` are differentiated, so
    # sqrt must never see the 0 whose infinite slope would make 0 * inf = NaN
    nonzero = v.data != 0
    return where(nonzero, sqrt(where(nonzero, v, 1.0)), 0.0)


def logsumexp(a: Any, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
    """log(sum(exp(a))) over ``axis``, computed without overflow."""
    return _reduce(LogSumExp, "logsumexp", a, axis, keepdims, torch_names)


def _single_axis(op: str, a: Tensor, axis: Any, kw: dict) -> int:
    axis, _ = _torch_names(op, axis, False, kw)
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: axis must be one int, got {axis!r}")
    return normalize_axis(axis, a.ndim, op)[0]


def softmax(a: Any, axis: int = -1, **torch_names: Any) -> Tensor:
    """exp(a) / sum(exp(a)) along ``axis``, computed without overflow.

    >>> import nnet
    >>> nnet.softmax(nnet.tensor([0.0, 0.0])).numpy()
    array([0.5, 0.5], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    return Softmax.apply(a, _single_axis("softmax", a, axis, torch_names))


def log_softmax(a: Any, axis: int = -1, **torch_names: Any) -> Tensor:
    """log(softmax(a)) along ``axis``, computed without overflow or log(0)."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    return LogSoftmax.apply(a, _single_axis("log_softmax", a, axis, torch_names))


from nnet.autograd.elementwise import exp, sqrt, where  # noqa: E402
from nnet.autograd.shape import broadcast_to  # noqa: E402
