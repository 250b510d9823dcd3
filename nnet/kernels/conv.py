"""2-D convolution as one primitive: im2col, one matmul, the bias added in place; with wide inputs
both run a block of images at a time, as does the input gradient's product and col2im. A 3x3,
stride-1 'same' convolution over wide inputs takes Winograd's F(2x2, 3x3) instead (winograd.py).

``vjp_arrays`` (no create_graph) works on the forward's saved patch matrix or Winograd transforms;
``vjp`` is written with nnet ops (matmul, sum, :class:`Im2Col`, :class:`Col2ImPadded`), so
``create_graph=True`` differentiates it again. See derivations.md#conv2d-fused.
"""

from __future__ import annotations

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.linalg import tall_product
from nnet.autograd.tensor import Tensor
from nnet.kernels import fewchannels, winograd
from nnet.kernels.channels import column_sums, per_channel
from nnet.kernels.im2col import (
    COLUMN_MAJOR_BELOW,
    Col2ImPadded,
    Geometry,
    Im2Col,
    col2im_array,
    patch_windows,
)
from nnet.threads import SMALL_PRODUCT_MACS, blas_for, parallel_for

#: A 3x3 stride-1 'same' convolution takes Winograd's F(2x2, 3x3) (winograd.py) with at least this
#: many input channels, C_in C_out at least WINOGRAD_MIN_PRODUCT and WINOGRAD_MIN_PIXELS output
#: pixels: the products shrink 2.25 times but the transforms cost per channel, not per product, and
#: a few Python calls per block. Where the two cross: ``python -m benchmarks.crossovers winograd``.
#: On 2026-12-06 (AMD EPYC, OpenBLAS's own kernels, four runs at one and two threads), after the
#: Winograd path's chunked products: 64x14x14 16 -> 16 and 16 -> 8 went 1.1-1.7x faster by Winograd
#: in every run, 16 -> 4 and 16 -> 1 either way; 16x7x7 (784 pixels) tied or lost, 4x8x8 lost 1.5x.
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_PRODUCT = 128
WINOGRAD_MIN_PIXELS = 1536
#: Rows of the patch matrix handled per block of images: the block's patches (4096 x 288 floats for
#: 32 channels) are multiplied while still in cache rather than after the whole matrix is written.
#: Measured by ``python -m benchmarks.crossovers chunk_rows``.
CHUNK_ROWS = 4096


def takes_winograd(x_shape: tuple[int, ...], w_shape: tuple[int, ...], geo: Geometry) -> bool:
    """Whether the convolution of an ``x_shape`` input with a ``w_shape`` kernel runs Winograd's
    F(2x2, 3x3): its geometry fits and the sizes are ones where it measured faster."""
    cin, cout = w_shape[2], w_shape[3]
    return (
        cin >= WINOGRAD_MIN_CHANNELS
        and cin * cout >= WINOGRAD_MIN_PRODUCT
        and x_shape[0] * geo[4][0] * geo[4][1] >= WINOGRAD_MIN_PIXELS
        and winograd.fits(geo, x_shape)
    )


def _images_per_chunk(n: int, pixels: int) -> int:
    return max(1, min(n, CHUNK_ROWS // max(1, pixels)))


def _forward_by_chunks(
    x: np.ndarray, w2: np.ndarray, bias: np.ndarray | None, geo: Geometry
) -> tuple[np.ndarray, np.ndarray]:
    """(patch matrix, output) built a block of images at a time: the block's patches are copied
    and multiplied at once, then the bias added to the block's outputs, all while in cache."""
    windows = patch_windows(x, geo)
    patches = np.empty(windows.shape, x.dtype)
    n, oh, ow = windows.shape[:3]
    k, cout = w2.shape
    y = np.empty((n, oh, ow, cout), np.result_type(x, w2))
    step = _images_per_chunk(n, oh * ow)

    def images(start: int, stop: int) -> None:
        for a in range(start, stop, step):
            b = min(stop, a + step)
            np.copyto(patches[a:b], windows[a:b])
            rows = y[a:b].reshape(-1, cout)
            np.matmul(patches[a:b].reshape(-1, k), w2, out=rows)
            if bias is not None:
                per_channel(np.add, rows, bias, out=rows)

    parallel_for(images, n, min_block=step)
    return patches.reshape(n * oh * ow, k), y


def _input_grad_by_chunks(
    g2: np.ndarray, weight: np.ndarray, shape: tuple[int, ...], geo: Geometry
) -> np.ndarray:
    """col2im(G W^T) a block of images at a time: one (T, rows, C_in) product G W_t^T per block,
    whose nine contiguous tap planes col2im adds while they are still in cache."""
    kh, kw, cin, cout = weight.shape
    taps = np.ascontiguousarray(weight.reshape(kh * kw, cin, cout).swapaxes(1, 2))
    n = shape[0]
    pixels = g2.shape[0] // n
    gx = np.zeros(shape, np.result_type(g2, taps))
    step = _images_per_chunk(n, pixels)

    def images(start: int, stop: int) -> None:
        buf = np.empty((kh * kw, step * pixels, cin), gx.dtype)
        for a in range(start, stop, step):
            b = min(stop, a + step)
            rows = g2[a * pixels : b * pixels]
            part = np.matmul(rows, taps, out=buf) if b - a == step else rows @ taps
            col2im_array(part.swapaxes(0, 1), (b - a, *shape[1:]), geo, out=gx[a:b])

    parallel_for(images, n, min_block=step)
    return gx


def weight_product(patches: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """``patches^T g2`` (the kernel gradient) with the rows split over nnet's threads, each block's
    product by :func:`tall_product`, the partial sums added at the end."""
    rows, k = patches.shape
    macs = rows * k * g2.shape[1]
    # blocks of at least SMALL_PRODUCT_MACS / 2: the seed's few-channel products are memory-bound,
    # and a second core reading half of them from the first core's cache gains nothing (threads.py)
    min_block = max(CHUNK_ROWS, rows * SMALL_PRODUCT_MACS // (2 * max(1, macs)))
    if rows < 2 * min_block:
        with blas_for(macs):
            return tall_product(patches, g2)
    parts = parallel_for(
        lambda start, stop: tall_product(patches[start:stop], g2[start:stop]),
        rows,
        min_block=min_block,
    )
    out = parts[0]
    for p in parts[1:]:
        out += p
    return out


class Conv2d(Function):
    """y = P W + b, P = im2col(x) as (M, KH KW C_in), W the kernel as (KH KW C_in, C_out); VJP:
    (col2im(G W^T), P^T G, sum G). See derivations.md#conv2d-fused."""

    def forward(ctx, x, weight, bias, geo):
        kh, kw, cin, cout = weight.shape
        ctx.winograd = takes_winograd(x.shape, weight.shape, geo)
        if ctx.winograd:
            v, y = winograd.conv(x, weight, bias, keep=grad_enabled.get())
            ctx.save_for_backward(v)
            return y
        w2 = weight.reshape(kh * kw * cin, cout)
        # Row-order patches by blocks: wide inputs always (126 -> 111 ms for the conv2d benchmark's
        # forward + backward); a few channels only when nothing records, since the backward wants
        # channel-major patches (no_grad, (1000, 14, 14, 4) -> 8 channels: 11.1 -> 7.0 ms; with one
        # channel the channel-major product stays faster, 10.8 against 16.9 ms)
        if cin >= COLUMN_MAJOR_BELOW or (cin >= 4 and not grad_enabled.get()):
            cols, y = _forward_by_chunks(x, w2, bias, geo)
            ctx.save_for_backward(cols)
            return y
        cols, y = fewchannels.forward(x, w2, bias, geo)  # cols: a view of (T, C, M) memory
        ctx.save_for_backward(cols)
        return y

    def vjp(ctx, grad):
        # recorded (create_graph): nnet ops of x and the kernel, differentiable again; the patches
        # are rebuilt as an op of x, so d(gw)/dx is part of the graph
        x, weight, _, geo = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        kh, kw, cin, cout = weight.shape
        g2 = grad.reshape(-1, cout)
        gx = gw = gb = None
        if need_w:
            cols = Im2Col.apply(x, geo).reshape(-1, kh * kw * cin)
            gw = tall_product(cols, g2).reshape(weight.shape)
        if need_b:
            gb = g2.sum(axis=0)
        if need_x:
            if cin < COLUMN_MAJOR_BELOW:
                # (W G^T): channel-major (T, C, M) memory, which col2im adds along whole rows
                w2 = weight.reshape(kh * kw * cin, cout)
                gcols = (w2 @ g2.swapaxes(0, 1)).reshape(kh * kw, cin, -1).permute(2, 0, 1)
            else:
                # one (M, C) block per tap, G W_t^T, so each of col2im's adds reads contiguous
                # memory (4.3 ms -> 1.8 ms for the wide CNN's (64, 14, 14, 32) input)
                taps = weight.reshape(kh * kw, cin, cout).swapaxes(1, 2)
                gcols = (g2 @ taps).swapaxes(0, 1)
            gx = Col2ImPadded.apply(gcols, x.data.shape, geo)
        return gx, gw, gb, None

    def vjp_arrays(ctx, grad):
        x, weight, _, geo = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        w = weight.data
        kh, kw, cin, cout = w.shape
        g2 = grad.reshape(-1, cout)
        # a ones-vector product: the axis-0 reduce walks rows of C_out floats (0.79 ms against
        # 0.08 for the wide CNN's first (50176, 32) gradient)
        gb = column_sums(g2, np.ones(g2.shape[0], g2.dtype)) if need_b else None
        if ctx.winograd:
            gx, gw = winograd.conv_vjp(grad, ctx.saved[0], w, x.data.shape, need_x, need_w)
            return gx, gw, gb, None
        if cin < COLUMN_MAJOR_BELOW and fewchannels.shifts_fit(geo):
            w2 = w.reshape(kh * kw * cin, cout)
            gx, gw = fewchannels.vjp(ctx.saved[0], g2, w2, x.data.shape, geo, need_x, need_w)
            return gx, None if gw is None else gw.reshape(w.shape), gb, None
        gw = weight_product(ctx.saved[0], g2).reshape(w.shape) if need_w else None
        gx = None
        if need_x and cin >= COLUMN_MAJOR_BELOW:
            gx = _input_grad_by_chunks(g2, w, x.data.shape, geo)
        elif need_x:
            with blas_for(g2.size * kh * kw * cin):
                gcols = (w.reshape(kh * kw * cin, cout) @ g2.T).reshape(kh * kw, cin, -1)
            gx = col2im_array(gcols.transpose(2, 0, 1), x.data.shape, geo)
        return gx, gw, gb, None


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, geo: Geometry) -> Tensor:
    """The convolution of NHWC ``x`` with a (KH, KW, C_in, C_out) kernel for the geometry ``geo``
    (kernel, stride, dilation, (pad top, pad left), output size); the checks are the caller's.

    >>> import nnet
    >>> y = conv2d(nnet.ones((1, 3, 3, 1)), nnet.ones((3, 3, 1, 1)), None,
    ...            ((3, 3), (1, 1), (1, 1), (1, 1), (3, 3)))
    >>> y.reshape(3, 3).numpy()
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]], dtype=float32)
    """
    return Conv2d.apply(x, weight, bias, geo)


__all__ = ["Conv2d", "conv2d"]
