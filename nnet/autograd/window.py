"""Sliding windows over the two spatial axes of an NHWC tensor (im2col) and its adjoint (col2im).

``sliding_windows`` is a strided view: no copy until a later reshape needs one. Each op's VJP is the
other: windows read every input pixel once per window that covers it, so their adjoint adds the window
gradients back into those pixels. See docs/derivations.md, "Sliding windows".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor


def pair(value: Any, name: str, op: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair, with a clear error otherwise."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None


def window_output_size(size: int, kernel: int, stride: int, dilation: int) -> int:
    """How many windows fit along one axis (floored, as PyTorch)."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def _windows(
    x: np.ndarray, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int]
) -> np.ndarray:
    n, h, w, c = x.shape
    oh = window_output_size(h, k[0], s[0], d[0])
    ow = window_output_size(w, k[1], s[1], d[1])
    sn, sh, sw, sc = x.strides
    return as_strided(
        x,
        shape=(n, oh, ow, k[0], k[1], c),
        strides=(sn, sh * s[0], sw * s[1], sh * d[0], sw * d[1], sc),
        writeable=False,
    )


def _col2im(
    cols: np.ndarray, shape: tuple[int, ...], s: tuple[int, int], d: tuple[int, int]
) -> np.ndarray:
    n, oh, ow, kh, kw, c = cols.shape
    out = np.zeros(shape, dtype=cols.dtype)
    if (kh, kw) == s and d == (1, 1):
        # windows that tile without overlap (pooling): one transposed copy, 4x faster than adds
        out[:, : oh * kh, : ow * kw] = cols.transpose(0, 1, 3, 2, 4, 5).reshape(
            n, oh * kh, ow * kw, c
        )
        return out
    if c < 16:
        # with few channels each window slice is a run of c floats; one transposed copy first makes
        # every add below run over whole rows (2x faster for 3x3 over 4 channels)
        cols = np.ascontiguousarray(cols.transpose(0, 3, 4, 1, 2, 5)).transpose(0, 3, 4, 1, 2, 5)
    for i in range(kh):
        r = i * d[0]
        for j in range(kw):
            q = j * d[1]
            out[:, r : r + s[0] * (oh - 1) + 1 : s[0], q : q + s[1] * (ow - 1) + 1 : s[1], :] += (
                cols[:, :, :, i, j, :]
            )
    return out


class SlidingWindows(Function):
    """windows(x)[n, r, c, i, j, k] = x[n, r s + i d, c s + j d, k]; VJP: col2im(g).
    See derivations.md#sliding-windows."""

    saved_inputs = "none"

    def forward(ctx, x, kernel, stride, dilation):
        return _windows(x, kernel, stride, dilation)

    def vjp(ctx, grad):
        x, _, stride, dilation = ctx.inputs
        return Col2Im.apply(grad, x.data.shape, stride, dilation), None, None, None

    def vjp_arrays(ctx, grad):
        x, _, stride, dilation = ctx.inputs
        return _col2im(grad, x.data.shape, stride, dilation), None, None, None


class Col2Im(Function):
    """col2im(g)[n, y, x, k] = sum of g over the windows that cover (y, x); VJP: windows(g).
    See derivations.md#sliding-windows."""

    saved_inputs = "none"

    def forward(ctx, cols, shape, stride, dilation):
        return _col2im(cols, shape, stride, dilation)

    def vjp(ctx, grad):
        cols, _, stride, dilation = ctx.inputs
        kernel = cols.data.shape[3:5]
        return SlidingWindows.apply(grad, kernel, stride, dilation), None, None, None

    def vjp_arrays(ctx, grad):
        cols, _, stride, dilation = ctx.inputs
        return _windows(grad, cols.data.shape[3:5], stride, dilation), None, None, None


def sliding_windows(x: Any, kernel_size: Any, stride: Any = 1, dilation: Any = 1) -> Tensor:
    """The (KH, KW) windows of an NHWC tensor: shape (N, OH, OW, KH, KW, C), a strided view.

    >>> import nnet
    >>> nnet.sliding_windows(nnet.ones((1, 4, 4, 2)), 3).shape
    (1, 2, 2, 3, 3, 2)
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    k = pair(kernel_size, "kernel_size", "sliding_windows")
    s = pair(stride, "stride", "sliding_windows")
    d = pair(dilation, "dilation", "sliding_windows")
    if x.ndim != 4:
        raise ValueError(f"sliding_windows: expects an NHWC tensor (4 axes), got shape {x.shape}")
    if min(*k, *s, *d) < 1:
        raise ValueError(
            f"sliding_windows: kernel_size, stride and dilation must be positive, got {k}, {s}, {d}"
        )
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    if span[0] > x.shape[1] or span[1] > x.shape[2]:
        raise ValueError(
            f"sliding_windows: a {k[0]}x{k[1]} window (dilation {d}) spans {span[0]}x{span[1]} "
            f"but the input is only {x.shape[1]}x{x.shape[2]}; pad the input or use a smaller kernel"
        )
    return SlidingWindows.apply(x, k, s, d)


def col2im(cols: Any, input_shape: tuple[int, ...], stride: Any = 1, dilation: Any = 1) -> Tensor:
    """The adjoint of :func:`sliding_windows`: add each window back where it was read from."""
    cols = cols if isinstance(cols, Tensor) else Tensor(cols)
    s = pair(stride, "stride", "col2im")
    d = pair(dilation, "dilation", "col2im")
    return Col2Im.apply(cols, tuple(input_shape), s, d)
