"""conv-relu-pool on the patch path (an input that takes no gradient), output channels first.

convrelu.ConvReluPool's convolution, when it does not take Winograd's F(2x2, 3x3), multiplies
window-offset-major patches P^T, (K + 1, KH_p KW_p, M) with a row of ones for the bias
(convbn.patches_offset_major). With the few output channels of a first layer (the seed's 4), a
(M, C_out) result has rows of 4 floats, which both BLAS and NumPy's loops handle slowly: here the
products are W^T P^T, (C_out, M) per window offset, and every pass after them (the maxima, the
routing of the gradient, the kernel gradient's P^T d as a product of two row-major operands)
runs along rows of M. Only the pooled quarter-size output and its gradient are transposed to and
from NHWC. The seed's first block, (100, 28, 28, 1) -> 4 channels, one thread, micro under
chrt: the forward's product 181 -> 105 us, the kernel gradient's products 302 -> ~75 us.

A block of images per thread, forward and VJP alike (each thread reads the patches its own core
wrote), each block a few long NumPy calls with the window offsets as one axis: per offset, the
routing took six to eight calls of a few microseconds, and two threads spent them handing the
GIL between cores. See derivations.md#convolution-relu-batch-norm-and-max-pooling-fused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.kernels.convbn import patches_offset_major
from nnet.kernels.im2col import Geometry
from nnet.kernels.pool import running_max
from nnet.threads import blas_for, items_per_block, parallel_for

#: Rows per slab of the kernel gradient's product, rounded down to whole images: OpenBLAS
#: multiplies a huge shared dimension into a tiny result slowly, a batch of slabs summed
#: afterwards fast (convbn.tall_product_t).
SLAB_ROWS = 2048


def _item_bytes(k1: int, cout: int, taps: int, pixels: int, itemsize: int) -> int:
    """What one image's block holds: its patches and its offset planes."""
    return (k1 + cout) * taps * pixels * itemsize


def forward(ctx: Any, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, geo: Geometry,
            kernel: tuple[int, int]) -> np.ndarray:  # fmt: skip
    """maxpool(relu(conv(x) + bias)) as NHWC; ``ctx.saved`` gets (z, pooled): the offset planes
    (taps, C_out, M) and their maxima (C_out, M); ``ctx.conv_saved`` the patches (K + 1, taps, M)."""
    kh, kw, cin, cout = weight.shape
    k = kh * kw * cin
    n, (oh, ow), (ph, pw) = x.shape[0], geo[4], kernel
    taps, pixels = ph * pw, (oh // ph) * (ow // pw)
    pt = np.empty((k + 1, ph, pw, n, oh // ph, ow // pw), x.dtype)  # the last row ones
    cols = pt.reshape(k + 1, taps, n * pixels)
    w_t = np.empty((cout, k + 1), np.result_type(weight, x))
    w_t[:, :k] = weight.reshape(k, cout).T
    w_t[:, k] = 0 if bias is None else bias
    z = np.empty((taps, cout, n * pixels), w_t.dtype)
    pooled = np.empty((cout, n * pixels), w_t.dtype)
    out = np.empty((n * pixels, cout), w_t.dtype)

    def images(start: int, stop: int) -> None:
        patches_offset_major(x[start:stop], geo, kernel, pt[:, :, :, start:stop])
        rs = slice(start * pixels, stop * pixels)
        np.matmul(w_t, cols[:, :, rs].swapaxes(0, 1), out=z[:, :, rs])
        running_max(pooled[:, rs], z[:, :, rs])
        # the ReLU after the maximum (they commute); NaN kept, as relu's. A channel at a time: the
        # whole transpose loops over runs of C_out floats (the seed's first block: 66 -> 34 us)
        for c in range(cout):
            np.maximum(pooled[c, rs], 0, out=out[rs, c])

    item = _item_bytes(k + 1, cout, taps, pixels, x.itemsize)
    with blas_for(cols.size * cout):  # few channels: one BLAS thread (threads.py)
        parallel_for(images, n, min_block=items_per_block(item))
    ctx.conv_saved = cols
    ctx.save_for_backward(z, pooled)
    return out.reshape(n, oh // ph, ow // pw, cout)


def first_max_hits(planes: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """(taps, ...) booleans: where offset plane k holds its window's first maximum (offsets in
    row-major order), or its window's first NaN: pool.first_max's rule, the offsets one axis."""
    hits = np.equal(planes, pooled)
    if pooled.dtype.kind == "f" and bool(np.isnan(np.max(pooled, initial=-np.inf))):
        hits |= np.isnan(planes)
    if len(hits) > 1:
        seen = hits[0].copy()
        for k in range(1, len(hits)):
            np.greater(hits[k], seen, out=hits[k])  # a bool > is "and not"
            if k < len(hits) - 1:
                seen |= hits[k]
    return hits


def _kernel_gradient(cols: np.ndarray, d: np.ndarray, pixels: int) -> np.ndarray:
    """sum over offsets t of cols[:, t] @ d[t].T: (K + 1, C_out) from (K + 1, taps, rows) patches
    and a (taps, C_out, rows) gradient, ``rows`` whole images of ``pixels``, by slabs of images."""
    k1, taps, rows = cols.shape
    cout = d.shape[1]
    slab = max(1, SLAB_ROWS // max(1, pixels)) * pixels
    slabs = rows // slab
    head = slabs * slab
    out = np.zeros((k1, cout), np.result_type(cols, d))
    if slabs:
        a = cols[:, :, :head].reshape(k1, taps, slabs, slab).transpose(1, 2, 0, 3)
        b = d[:, :, :head].reshape(taps, cout, slabs, slab).transpose(0, 2, 3, 1)
        out += np.matmul(a, b).reshape(-1, k1, cout).sum(axis=0)
    if head < rows:
        out += np.matmul(cols[:, :, head:].swapaxes(0, 1), d[:, :, head:].swapaxes(1, 2)).sum(0)
    return out


def kernel_vjp(ctx: Any, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(g_weight, g_bias) of :func:`forward` for the NHWC output gradient ``grad``: g [pooled > 0]
    routed to each window's first maximum, then P^T d, a block of images per thread."""
    z, pooled = ctx.saved
    cols = ctx.conv_saved
    taps, cout, rows = z.shape
    n = grad.shape[0]
    pixels = rows // max(1, n)
    gq = np.empty((cout, rows), grad.dtype)
    # relu'(0) = 0; NaN > 0 is False, as relu's
    np.multiply(grad.reshape(rows, cout).T, pooled > 0, out=gq)

    def images(start: int, stop: int) -> np.ndarray:
        rs = slice(start * pixels, stop * pixels)
        d = np.multiply(first_max_hits(z[:, :, rs], pooled[:, rs]), gq[:, rs])
        return _kernel_gradient(cols[:, :, rs], d, pixels)

    item = _item_bytes(cols.shape[0], cout, taps, pixels, z.itemsize)
    with blas_for(cols.size * cout):
        parts = parallel_for(images, n, min_block=items_per_block(item))
    h = parts[0]
    for part in parts[1:]:
        h = h + part
    return h[:-1], h[-1]
