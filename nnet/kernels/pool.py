"""Max-pooling over non-overlapping windows (kernel == stride, no padding, no dilation), fused.

The composition (``sliding_windows(x).amax(axis=(3, 4))``) builds a boolean mask the size of the
windows in its backward, multiplies the broadcast gradient by it and adds the windows back with
col2im: three passes over the input. Here the forward is a running maximum over the KH KW window
offsets, and the backward writes ``g`` straight into each offset of the input gradient where that
offset holds the first maximum of its window. See derivations.md#max-pooling-fused.

With few channels, each offset's strided slice of an NHWC image has contiguous runs of only C
values, and NumPy pays per run: on the seed network (C = 4) the four slices cost more than the
arithmetic. There the image is first rearranged window-offset-major, (KH KW, N, OH, OW, C), by one
copy that moves each pixel's C values as a single item (a void view); every comparison, product and
maximum then runs over long contiguous rows, and the gradient goes back to NHWC by the inverse copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.tensor import Tensor
from nnet.autograd.window import sliding_windows

#: Pixels at most this many bytes wide (C * itemsize) take the offset-major layout, whose copy the
#: forward keeps for the backward. Wider pixels keep the strided slices: the layout pays there only
#: if its copy is kept, one more input-sized array per pool in the wide networks' peak memory.
#: Measured by ``python -m benchmarks.crossovers pool_layout``.
_OFFSET_MAJOR_MAX_BYTES = 64
#: Bytes of output per batch of images in the offset-major forward (the copy is KH KW times that).
_CHUNK_BYTES = 2**17


def window_offsets(kernel: tuple[int, int]) -> list[tuple[int, int]]:
    """Window offsets in row-major order: the order in which ties are broken."""
    return [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]


def window_slice(
    a: np.ndarray, i: int, j: int, kernel: tuple[int, int], out_hw: tuple[int, int]
) -> Any:
    """The element at offset (i, j) of every window: a strided (N, OH, OW, C) view of ``a``."""
    (kh, kw), (oh, ow) = kernel, out_hw
    return a[:, i : oh * kh : kh, j : ow * kw : kw]


def _pixels(a: np.ndarray, kernel: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """The covered part of contiguous NHWC ``a`` as (N, OH, KH, OW, KW) pixels, each pixel's C values
    one void item: a view, so copying it moves C values per item instead of one."""
    (kh, kw), (oh, ow) = kernel, out_hw
    n, c = a.shape[0], a.shape[3]
    pixels = a.view(np.dtype((np.void, c * a.itemsize))).reshape(a.shape[:3])
    return pixels[:, : oh * kh, : ow * kw].reshape(n, oh, kh, ow, kw)


def offset_major(x: np.ndarray, kernel: tuple[int, int], out: np.ndarray) -> None:
    """Copy contiguous ``x`` offset-major into ``out``, (KH KW, N, OH, OW, C): each offset's plane
    contiguous, so NumPy runs every operation on it as one flat loop."""
    kh, kw = kernel
    n, oh, ow = out.shape[1:4]
    pixel = np.dtype((np.void, x.shape[3] * x.itemsize))
    target = out.view(pixel)[..., 0].reshape(kh, kw, n, oh, ow)
    np.copyto(target, _pixels(x, kernel, (oh, ow)).transpose(2, 4, 0, 1, 3))


def from_offset_major(planes: np.ndarray, kernel: tuple[int, int], out: np.ndarray) -> None:
    """The inverse of :func:`offset_major`: contiguous (KH KW, N, OH, OW, C) ``planes`` copied
    into the covered part of contiguous NHWC ``out``."""
    kh, kw = kernel
    n, oh, ow, c = planes.shape[1:]
    pixels = planes.view(np.dtype((np.void, c * planes.itemsize))).reshape(kh, kw, n, oh, ow)
    target = _pixels(out, kernel, (oh, ow))  # (N, OH, KH, OW, KW)
    for j in range(kw):
        # one copy per column offset: NumPy loops in the target's memory order, and the whole
        # transpose at once made its inner loop KW pixels long (112 -> 55 us at C = 4)
        np.copyto(target[..., j], pixels[:, j].transpose(1, 2, 0, 3))


def running_max(out: np.ndarray, planes: Any) -> None:
    np.copyto(out, planes[0])
    for p in planes[1:]:
        np.maximum(out, p, out=out)


def _takes_offset_major(x: np.ndarray) -> bool:
    return x.shape[3] * x.itemsize <= _OFFSET_MAJOR_MAX_BYTES and x.size > 0


def first_max(
    planes: list[np.ndarray], out: np.ndarray, last: int
) -> Iterator[tuple[int, np.ndarray]]:
    """For each offset k in row-major order: where its plane holds its window's first maximum, or
    its first NaN in a window holding one (the composition's max rule, derivations.md#kinks)."""
    found: np.ndarray | None = None
    # a window's maximum is NaN exactly when it holds one: one pass over the output says whether
    # the planes need the NaN test too
    nans = out.dtype.kind == "f" and bool(np.isnan(np.max(out, initial=-np.inf)))
    for k, plane in enumerate(planes):
        hit = np.equal(plane, out)
        if nans:
            hit |= np.isnan(plane)
        if found is None:
            found = hit.copy() if last else hit
        else:
            np.greater(hit, found, out=hit)  # hit and not found: a bool > is "and not"
            if k < last:
                found |= hit
        yield k, hit


def _strided_planes(x: np.ndarray, kernel: tuple[int, int], out_hw: tuple[int, int]) -> list[Any]:
    return [window_slice(x, i, j, kernel, out_hw) for i, j in window_offsets(kernel)]


class MaxPool2d(Function):
    """max-pool with kernel == stride: y = max over each window's KH KW elements; VJP: g to the first
    maximal element of each window (row-major), as the composition. See derivations.md#max-pooling-fused."""

    saves_output = True

    def forward(ctx, x, kernel):
        n, hw = x.shape[0], (x.shape[1] // kernel[0], x.shape[2] // kernel[1])
        out = np.empty((n, *hw, x.shape[3]), x.dtype)
        if not _takes_offset_major(x):
            running_max(out, _strided_planes(x, kernel, hw))
            return out
        x = np.ascontiguousarray(x)
        taps = kernel[0] * kernel[1]
        # A few images at a time, so that their offset-major copy is still in cache when the
        # maxima read it: eval at batch 1000, first pool of the seed network, 3.0 -> 1.4 ms.
        step = max(1, _CHUNK_BYTES // max(1, out[0].nbytes))
        step = n if n <= 4 * step else step
        keep = grad_enabled.get()  # the backward's comparisons read the same layout: keep it all
        buf = np.empty((taps, n if keep else min(step, n), *out.shape[1:]), x.dtype)
        if keep:
            ctx.save_for_backward(buf)
        for start in range(0, n, step):
            rows = slice(start, min(start + step, n))
            part = buf[:, rows] if keep else buf[:, : rows.stop - start]
            offset_major(x[rows], kernel, part)
            running_max(out[rows], part)
        return out

    def vjp(ctx, grad):
        x, kernel = ctx.inputs
        windows = ctx.saved[0] if ctx.saved else None
        out = ctx.output.data
        return MaxPool2dBackward.apply(grad, x.data, out, kernel, windows=windows), None


class MaxPool2dBackward(Function):
    """dx = g routed to each window's first maximum (linear in g, piecewise constant in x); its VJP
    gathers gg from those same positions. See derivations.md#max-pooling-fused."""

    def forward(ctx, grad, x, out, kernel, windows=None):
        (kh, kw), (oh, ow) = kernel, out.shape[1:3]
        # every element is written below unless the windows leave a remainder uncovered
        covered = x.shape[1] == oh * kh and x.shape[2] == ow * kw
        dx = np.empty(x.shape, grad.dtype) if covered else np.zeros(x.shape, grad.dtype)
        if not _takes_offset_major(x):
            planes = _strided_planes(x, kernel, (oh, ow))
            for k, hit in first_max(planes, out, len(planes) - 1):
                i, j = divmod(k, kw)
                np.multiply(grad, hit, out=window_slice(dx, i, j, kernel, (oh, ow)))
            return dx
        if windows is None:
            windows = np.empty((kh * kw, *out.shape), x.dtype)
            offset_major(np.ascontiguousarray(x), kernel, windows)
        dwin = np.empty((kh * kw, *out.shape), grad.dtype)
        for k, hit in first_max(list(windows), out, kh * kw - 1):
            np.multiply(grad, hit, out=dwin[k])
        from_offset_major(dwin, kernel, dx)
        return dx

    def vjp(ctx, gg):
        _, x, out, kernel = ctx.inputs
        n, oh, ow, c = out.shape
        planes = _strided_planes(x, kernel, (oh, ow))
        hits = [hit for _, hit in first_max(planes, out, len(planes) - 1)]
        mask = np.stack(hits, axis=3).reshape(n, oh, ow, kernel[0], kernel[1], c).astype(out.dtype)
        return (sliding_windows(gg, kernel, kernel) * mask).sum(axis=(3, 4)), None, None, None


def max_pool2d(x: Tensor, kernel: tuple[int, int]) -> Tensor:
    """Max-pooling of an NHWC tensor over non-overlapping ``kernel`` windows (stride = kernel, no
    padding); a remainder that does not fill a window is dropped, as in PyTorch.

    >>> import nnet
    >>> x = nnet.tensor([[1.0, 3.0, 0.0], [2.0, 3.0, 9.0]]).reshape(1, 2, 3, 1)
    >>> max_pool2d(x, (2, 2)).reshape(-1).numpy()
    array([3.], dtype=float32)
    """
    return MaxPool2d.apply(x, kernel)
