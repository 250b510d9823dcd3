"""im2col with the padding built in, and its adjoint, for the fused convolution.

``im2col(x)`` holds a convolution's patches as an (M, T, C) array, M = N OH OW output positions,
T = KH KW kernel taps (i, j) in row-major order, C channels; reshaped to (M, T C) it is the patch
matrix that multiplies a (KH, KW, C, C_out) kernel reshaped to (T C, C_out). The
composition pads (a full copy through ``np.pad``), takes the windows and copies them with a reshape
whose contiguous runs are C floats long (3 floats for a 3x3 window over one channel). Here, with
few channels, the matrix is stored column-major (one contiguous (N, OH, OW) plane per column), each
kernel offset is one slice copy out of the unpadded input running along whole output rows, and the
borders stay zero; with many, it is one copy of a strided window view of a zero-bordered input,
whose runs are a row of taps (KW C floats) long. See derivations.md#im2col-and-col2im-with-padding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.window import window_output_size

Geometry = tuple[
    tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]
]
"""(kernel, stride, dilation, (pad top, pad left), (OH, OW)) of one convolution."""


def geometry(
    shape: tuple[int, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
) -> Geometry:
    """The geometry of a convolution of an NHWC input of ``shape`` padded by
    ``((top, bottom), (left, right))``.

    >>> geometry((1, 5, 5, 3), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    ((3, 3), (1, 1), (1, 1), (1, 1), (5, 5))
    """
    size = [
        window_output_size(shape[1 + a] + sum(pads[a]), kernel[a], stride[a], dilation[a])
        for a in (0, 1)
    ]
    return (kernel, stride, dilation, (pads[0][0], pads[1][0]), (size[0], size[1]))


#: Below this many channels the patches are stored column-major (see the module docstring).
#: Measured by ``python -m benchmarks.crossovers column_major``.
COLUMN_MAJOR_BELOW = 16


def _span(out: int, size: int, offset: int, stride: int) -> tuple[int, int, int]:
    """Output positions [r0, r1) whose input index r stride + offset lies inside [0, size), and the
    input index of r0."""
    r0 = max(0, -(offset // stride))
    r1 = min(out, (size - 1 - offset) // stride + 1)
    return r0, max(r0, r1), r0 * stride + offset


def _offsets(x_hw: tuple[int, int], geo: Geometry) -> Any:
    """For every kernel offset (i, j): the output block it fills and the input slice it reads."""
    (kh, kw), (sh, sw), (dh, dw), (pt, pl), (oh, ow) = geo
    for i in range(kh):
        r0, r1, y0 = _span(oh, x_hw[0], i * dh - pt, sh)
        for j in range(kw):
            c0, c1, x0 = _span(ow, x_hw[1], j * dw - pl, sw)
            if r0 < r1 and c0 < c1:
                rows = slice(y0, y0 + sh * (r1 - r0 - 1) + 1, sh)
                cols = slice(x0, x0 + sw * (c1 - c0 - 1) + 1, sw)
                yield i, j, (slice(r0, r1), slice(c0, c1)), (rows, cols)


def _needs_zeros(x_hw: tuple[int, int], geo: Geometry) -> bool:
    """Whether some output position reads padding (then the buffer starts as zeros)."""
    (kh, kw), (sh, sw), (dh, dw), (pt, pl), (oh, ow) = geo
    return (
        pt > 0
        or pl > 0
        or (oh - 1) * sh + (kh - 1) * dh >= x_hw[0]
        or ((ow - 1) * sw + (kw - 1) * dw >= x_hw[1])
    )


def padded(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """NHWC ``x`` with the zero border that ``geo``'s patches read (a copy), or ``x`` itself when
    no patch reads padding."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), (pt, pl), (oh, ow) = geo
    if not _needs_zeros((h, w), geo):
        return x
    bottom = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - pt - h)
    right = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - pl - w)
    out = np.zeros((n, pt + h + bottom, pl + w + right, c), x.dtype)
    out[:, pt : pt + h, pl : pl + w, :] = x
    return out


def patch_windows(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """Every patch of NHWC ``x`` as a read-only strided (N, OH, OW, KH, KW, C) view of a zero-padded
    copy (of ``x`` itself when no patch reads padding). Copying it is one call whose contiguous runs
    are KW C floats long (at dilation 1), where nine slice copies run C floats at a time: 11 ms
    against 24 ms for the conv2d benchmark's (64, 32, 32, 32) input."""
    n, c = x.shape[0], x.shape[3]
    (kh, kw), (sh, sw), (dh, dw), _, (oh, ow) = geo
    x = padded(x, geo)
    s0, s1, s2, s3 = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, oh, ow, kh, kw, c), (s0, sh * s1, sw * s2, dh * s1, dw * s2, s3), writeable=False
    )


def im2col_array(x: np.ndarray, geo: Geometry) -> np.ndarray:
    """The patches of NHWC ``x`` as an (M, T, C) array, T = KH KW kernel taps: a view of
    (T, C, M) memory when ``x`` has fewer than ``COLUMN_MAJOR_BELOW`` channels, else C-ordered.
    Either way ``reshape(M, T C)`` is a view: the (M, K) patch matrix."""
    n, h, w, c = x.shape
    (kh, kw), (oh, ow) = geo[0], geo[4]
    if c < COLUMN_MAJOR_BELOW:
        alloc = np.zeros if _needs_zeros((h, w), geo) else np.empty
        buf = alloc((kh, kw, c, n, oh, ow), x.dtype)
        for i, j, (ro, co), (ri, ci) in _offsets((h, w), geo):
            buf[i, j, :, :, ro, co] = x[:, ri, ci, :].transpose(3, 0, 1, 2)
        return buf.reshape(kh * kw, c, n * oh * ow).transpose(2, 0, 1)
    return patch_windows(x, geo).copy().reshape(n * oh * ow, kh * kw, c)


def col2im_array(
    cols: np.ndarray, shape: tuple[int, ...], geo: Geometry, out: np.ndarray | None = None
) -> np.ndarray:
    """The adjoint of :func:`im2col_array` for (M, T, C) ``cols`` in any memory order: each patch
    entry added back onto the pixel it was read from (entries read from padding are dropped).
    ``out``: a zeroed NHWC array of ``shape`` to add into, for row-major (tap-major) ``cols``."""
    n, h, w, c = shape
    kw, (oh, ow) = geo[0][1], geo[4]
    if cols.strides[2] > cols.strides[0]:
        # channel-first planes: every add runs along whole rows (the NHWC adds, strided by C on
        # one side and by N OH OW on the other, took 9 ms instead of 0.3 for a (100, 14, 14, 4) input)
        acc = np.zeros((c, n, h, w), cols.dtype)
        for i, j, (ro, co), (ri, ci) in _offsets((h, w), geo):
            acc[:, :, ri, ci] += cols[:, i * kw + j, :].T.reshape(c, n, oh, ow)[:, :, ro, co]
        return np.ascontiguousarray(acc.transpose(1, 2, 3, 0))
    # one (N, OH, OW, C) plane per tap: contiguous when the caller made the gradient tap-major
    out = np.zeros(shape, cols.dtype) if out is None else out
    for i, j, (ro, co), (ri, ci) in _offsets((h, w), geo):
        out[:, ri, ci, :] += cols[:, i * kw + j, :].reshape(n, oh, ow, c)[:, ro, co, :]
    return out


class Im2Col(Function):
    """im2col(x)[(n, r, c), (i, j), k] = x[n, r s + i d - pt, c s + j d - pl, k], 0 outside x;
    VJP: col2im(g). See derivations.md#im2col-and-col2im-with-padding."""

    def forward(ctx, x, geo):
        return im2col_array(x, geo)

    def vjp(ctx, grad):
        x, geo = ctx.inputs
        return Col2ImPadded.apply(grad, x.data.shape, geo), None


class Col2ImPadded(Function):
    """col2im(g)[n, y, x, k] = sum of g over the patch entries read from pixel (y, x); VJP:
    im2col(g). See derivations.md#im2col-and-col2im-with-padding."""

    def forward(ctx, cols, shape, geo):
        return col2im_array(cols, shape, geo)

    def vjp(ctx, grad):
        _, _, geo = ctx.inputs
        return Im2Col.apply(grad, geo), None, None
