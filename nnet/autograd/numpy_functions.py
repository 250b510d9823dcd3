"""NumPy's functions with NumPy's signatures, run as nnet ops: the table ``FUNCTIONS`` that
``Tensor.__array_function__`` dispatches through (numpy_interop.py), and one adapter per function.

An adapter accepts ``out=None`` and NumPy's "not given" defaults; anything that would write outside the
graph, or an argument nnet's op has no meaning for, is refused by name (``_refuse``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from nnet.autograd import linalg_ops, ops
from nnet.autograd.tensor import Tensor


def unwrap(x: Any) -> Any:
    """Tensors replaced by their arrays, also inside lists and tuples (np.concatenate's argument)."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(unwrap(v) for v in x)
    return x


_NO_VALUE: Any = np._NoValue  # NumPy's "argument not given" default


def _refuse(name: str, out: Any = None, **rest: Any) -> None:
    """Reject ``out=`` and the arguments an adapter does not support, naming them."""
    if out is not None:
        raise TypeError(
            f"np.{name}(..., out=...) on a Tensor: writing into an array would take the result out "
            "of the graph; drop out= and use the Tensor it returns"
        )
    given = sorted(k for k, v in rest.items() if v is not None and v is not _NO_VALUE)
    if given:
        raise TypeError(
            f"np.{name} on a Tensor does not support {', '.join(k + '=' for k in given)}; call it "
            "without, or on "
            "t.detach() for the values outside the graph"
        )


def _keep(keepdims: Any) -> bool:
    return False if keepdims is _NO_VALUE else bool(keepdims)


def _cast(a: Any, dtype: Any) -> Any:
    return a if dtype is None else ops.astype(a if isinstance(a, Tensor) else Tensor(a), dtype)


def _reducer(name: str, op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """np.sum / np.prod: NumPy's signature; ``initial`` and ``where`` are refused by name."""

    def adapter(
        a: Any,
        axis: Any = None,
        dtype: Any = None,
        out: Any = None,
        keepdims: Any = _NO_VALUE,
        initial: Any = _NO_VALUE,
        where: Any = _NO_VALUE,
    ) -> Any:
        _refuse(name, out, initial=initial, where=where)
        return op(_cast(a, dtype), axis, _keep(keepdims))

    return adapter


def _mean(
    a: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: Any = _NO_VALUE,
    *,
    where: Any = _NO_VALUE,
) -> Any:
    _refuse("mean", out, where=where)
    return ops.mean(_cast(a, dtype), axis, _keep(keepdims))


def _spread(name: str, op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """np.var / np.std: NumPy's signature, ``correction`` as another name for ``ddof``."""

    def adapter(
        a: Any,
        axis: Any = None,
        dtype: Any = None,
        out: Any = None,
        ddof: Any = 0,
        keepdims: Any = _NO_VALUE,
        *,
        where: Any = _NO_VALUE,
        mean: Any = _NO_VALUE,
        correction: Any = _NO_VALUE,
    ) -> Any:
        _refuse(name, out, where=where, mean=mean)
        if correction is not _NO_VALUE:
            ddof = correction
        return op(_cast(a, dtype), axis, ddof, _keep(keepdims))

    return adapter


def _extreme(name: str, op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    def adapter(
        a: Any,
        axis: Any = None,
        out: Any = None,
        keepdims: Any = _NO_VALUE,
        initial: Any = _NO_VALUE,
        where: Any = _NO_VALUE,
    ) -> Any:
        _refuse(name, out, initial=initial, where=where)
        return op(a, axis, _keep(keepdims))

    return adapter


def _reshape(
    a: Any, shape: Any = None, order: Any = "C", *, newshape: Any = None, copy: Any = None
) -> Any:
    _refuse("reshape", order=None if order == "C" else order, copy=copy)
    return ops.reshape(a, newshape if shape is None else shape)


def _ravel(a: Any, order: Any = "C") -> Any:
    _refuse("ravel", order=None if order == "C" else order)
    return ops.reshape(a, -1)


def _transpose(a: Any, axes: Any = None) -> Any:
    # NumPy's transpose is a permutation of all axes: PyTorch's permute (nnet's transpose swaps two)
    return ops.reverse_axes(a) if axes is None else ops.permute(a, *axes)


def _moveaxis(a: Any, source: Any, destination: Any) -> Any:
    ndim = a.ndim
    src = [ops.shape_arg((s,))[0] % max(ndim, 1) for s in np.atleast_1d(source).tolist()]
    dst = [ops.shape_arg((d,))[0] % max(ndim, 1) for d in np.atleast_1d(destination).tolist()]
    if len(src) != len(dst):
        raise ValueError(f"np.moveaxis: {len(src)} source axes but {len(dst)} destinations")
    order = [n for n in range(ndim) if n not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return ops.permute(a, *order)


def _expand_dims(a: Any, axis: Any) -> Any:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = a.ndim + len(axes)
    new = {int(x) % ndim for x in axes if -ndim <= x < ndim}
    if len(new) != len(axes):
        raise ValueError(f"np.expand_dims: axes {axis} repeated or out of range for {ndim} dims")
    sizes = iter(a.shape)
    return ops.reshape(a, tuple(1 if i in new else next(sizes) for i in range(ndim)))


def _broadcast_to(array: Any, shape: Any, subok: Any = False) -> Any:
    return ops.broadcast_to(array, (shape,) if isinstance(shape, int) else shape)


def _concatenate(
    arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None, casting: Any = None
) -> Any:
    _refuse("concatenate", out, dtype=dtype, casting=casting)
    if axis is None:
        return ops.concatenate([ops.reshape(a, -1) for a in arrays])
    return ops.concatenate(arrays, axis)


def _stack(
    arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None, casting: Any = None
) -> Any:
    _refuse("stack", out, dtype=dtype, casting=casting)
    return ops.stack(arrays, axis)


def _hstack(tup: Any, *, dtype: Any = None, casting: Any = None) -> Any:
    _refuse("hstack", dtype=dtype, casting=casting)
    parts = [ops.reshape(a, -1) if np.ndim(a) == 0 else a for a in tup]
    return ops.concatenate(parts, 0 if parts and np.ndim(parts[0]) == 1 else 1)


def _vstack(tup: Any, *, dtype: Any = None, casting: Any = None) -> Any:
    _refuse("vstack", dtype=dtype, casting=casting)
    return ops.concatenate([ops.reshape(a, (1, -1)) if np.ndim(a) < 2 else a for a in tup], 0)


def _where(condition: Any, *xy: Any) -> Any:
    if not xy:  # np.where(c) is np.nonzero(c): indices, no gradient
        return np.nonzero(unwrap(condition))
    if len(xy) != 2:
        raise TypeError("np.where: give the condition alone, or the condition, x and y")
    return ops.where(condition, *xy)


def _clip(
    a: Any,
    a_min: Any = _NO_VALUE,
    a_max: Any = _NO_VALUE,
    out: Any = None,
    *,
    min: Any = _NO_VALUE,
    max: Any = _NO_VALUE,
    **kw: Any,
) -> Any:
    _refuse("clip", out, **kw)
    lo = None if a_min is _NO_VALUE else a_min
    hi = None if a_max is _NO_VALUE else a_max
    lo = lo if min is _NO_VALUE else min
    hi = hi if max is _NO_VALUE else max
    return ops.clip(a, lo, hi)


def _pad(
    array: Any, pad_width: Any, mode: Any = "constant", *, constant_values: Any = 0.0, **kw: Any
) -> Any:
    _refuse("pad", mode=None if mode == "constant" else mode, **kw)
    if np.ndim(constant_values) != 0:
        raise TypeError("np.pad on a Tensor: constant_values must be one number")
    return ops.pad(array, pad_width, float(constant_values))


def _take(a: Any, indices: Any, axis: Any = None, out: Any = None, mode: Any = None) -> Any:
    _refuse("take", out, mode=None if mode == "raise" else mode)
    idx = unwrap(indices)
    if axis is None:
        return ops.reshape(a, -1)[idx]
    ax = int(axis) % max(a.ndim, 1)
    return a[(slice(None),) * ax + (idx,)]


def _scan(name: str, op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    def adapter(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
        _refuse(name, out)
        return op(_cast(a, dtype), axis)

    return adapter


def _split(ary: Any, indices_or_sections: Any, axis: Any = 0) -> Any:
    """NumPy's split: a number of equal sections, or the indices to cut at."""
    n = ary.shape[int(axis)]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ValueError(f"np.split: {k} sections do not divide an axis of {n} elements")
        return ops.split(ary, n // k if n else [0] * k, int(axis))
    cuts = [min(max(int(c) if c >= 0 else int(c) + n, 0), n) for c in indices_or_sections]
    bounds = [0, *cuts, n]
    return ops.split(ary, [max(hi - lo, 0) for lo, hi in itertools.pairwise(bounds)], int(axis))


def _repeat(a: Any, repeats: Any, axis: Any = None) -> Any:
    return ops.repeat_interleave(a, repeats, axis)


def _trace(
    a: Any, offset: Any = 0, axis1: Any = 0, axis2: Any = 1, dtype: Any = None, out: Any = None
) -> Any:
    _refuse("trace", out)
    return ops.trace(_cast(a, dtype), offset, axis1, axis2)


def _sort(
    a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *, stable: Any = None
) -> Any:
    _refuse("sort", order=order)
    if axis is None:
        return ops.sort(ops.reshape(a, -1)).values
    return ops.sort(a, axis).values


def _take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Any:
    return ops.take_along_axis(arr, indices, axis)


def _einsum(subscripts: Any, *operands: Any, out: Any = None, **kw: Any) -> Any:
    _refuse("einsum", out, **{k: v for k, v in kw.items() if k != "optimize"})
    return ops.einsum(subscripts, *operands)


def _dot(a: Any, b: Any, out: Any = None) -> Any:
    _refuse("dot", out)
    return ops.dot(a, b)


def _outer(a: Any, b: Any, out: Any = None) -> Any:
    _refuse("outer", out)
    return ops.outer(a, b)


def _tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    return ops.tensordot(a, b, axes)


def _inner(a: Any, b: Any) -> Any:
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return ops.multiply(a, b)
    return ops.tensordot(a, b, ([-1], [-1]))


def _average(
    a: Any,
    axis: Any = None,
    weights: Any = None,
    returned: Any = False,
    *,
    keepdims: Any = _NO_VALUE,
) -> Any:
    keep = _keep(keepdims)
    if weights is None:
        total, mean = None, ops.mean(a, axis, keep)
    else:
        if np.shape(weights) != np.shape(a):
            raise ValueError(
                f"np.average on a Tensor: weights of shape {np.shape(weights)} for a tensor of shape "
                f"{np.shape(a)}; give weights of the tensor's shape"
            )
        total = ops.sum(weights, axis, keep)
        mean = ops.sum(ops.multiply(a, weights), axis, keep) / total
    if not returned:
        return mean
    if total is None:  # NumPy's sum of weights: the count of averaged elements, per result
        total = Tensor(np.full(mean.shape, np.size(a) // max(mean.data.size, 1), mean.dtype))
    return mean, total


def _norm(x: Any, ord: Any = None, axis: Any = None, keepdims: Any = False) -> Any:
    return linalg_ops.norm(x, ord, axis, bool(keepdims))


FUNCTIONS: dict[Callable[..., Any], Callable[..., Any]] = {
    np.sum: _reducer("sum", ops.sum),
    np.mean: _mean,
    np.var: _spread("var", ops.var),
    np.std: _spread("std", ops.std),
    np.max: _extreme("max", ops.amax),
    np.amax: _extreme("amax", ops.amax),
    np.min: _extreme("min", ops.amin),
    np.amin: _extreme("amin", ops.amin),
    np.reshape: _reshape,
    np.ravel: _ravel,
    np.transpose: _transpose,
    np.swapaxes: ops.swapaxes,
    np.moveaxis: _moveaxis,
    np.squeeze: ops.squeeze,
    np.expand_dims: _expand_dims,
    np.broadcast_to: _broadcast_to,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.hstack: _hstack,
    np.vstack: _vstack,
    np.where: _where,
    np.clip: _clip,
    np.pad: _pad,
    np.take: _take,
    np.cumsum: _scan("cumsum", ops.cumsum),
    np.cumprod: _scan("cumprod", ops.cumprod),
    np.prod: _reducer("prod", ops.prod),
    np.split: _split,
    np.tile: ops.tile,
    np.repeat: _repeat,
    np.flip: ops.flip,
    np.roll: ops.roll,
    np.tril: ops.tril,
    np.triu: ops.triu,
    np.diag: ops.diag,
    np.diagonal: ops.diagonal,
    np.trace: _trace,
    np.sort: _sort,
    np.take_along_axis: _take_along_axis,
    np.einsum: _einsum,
    np.dot: _dot,
    np.outer: _outer,
    np.tensordot: _tensordot,
    np.inner: _inner,
    np.average: _average,
    np.linalg.norm: _norm,
    np.linalg.inv: linalg_ops.inv,
    np.linalg.solve: linalg_ops.solve,
    np.linalg.det: linalg_ops.det,
}
