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

With one input channel and a stride-1, dilation-1 convolution (the seed's first layer) the patches
hold only (KH_p + KH - 1)(KW_p + KW - 1) distinct planes, the shifted planes R[u, v] = x_pad[N,
KH_p oy + u, KW_p ox + v] (:func:`shifted_planes`): patch row (i, j) at window offset (a, b) is
R[a + i, b + j]. The forward builds R (one strided copy) and multiplies it, with a row of ones, by
the kernel placed at every window offset's shift (:func:`shifted_kernel`, (KH_p KW_p C_out, U V +
1)): one product gives every offset's output, and no patches are built (the seed's first block at
one thread, in the step: 778 -> 649 us, where the patch rows were 36 copies out of R). The VJP
keeps R, not the patches: the kernel gradient is the product of R with the routed gradient, G = R
D^T ((U V) x (taps C_out)), summed over the offsets that pair each tap with each window offset:
292 -> 130 us for the product, P^T d of the 2.5 times larger patches being a read of 3.1 MB
(micro, one thread, chrt). With several blocks side by side (threads) the planes pay on some hosts
and not on others (:data:`SHIFTED_MAX_BLOCKS`).

A block of images per thread, forward and VJP alike (each thread reads the patches its own core
wrote), each block a few long NumPy calls with the window offsets as one axis: per offset, the
routing took six to eight calls of a few microseconds, and two threads spent them handing the
GIL between cores. See derivations.md#convolution-relu-batch-norm-and-max-pooling-fused.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from nnet.kernels.convbn import patches_offset_major, tall_product_t
from nnet.kernels.im2col import Geometry, padded
from nnet.kernels.pool import running_max
from nnet.threads import blas_for, blocks, items_per_block, parallel_for

#: Rows per slab of the kernel gradient's product, rounded down to whole images: OpenBLAS
#: multiplies a huge shared dimension into a tiny result slowly, a batch of slabs summed
#: afterwards fast (convbn.tall_product_t).
SLAB_ROWS = 2048

#: The shifted planes replace the patches when the images run in at most this many blocks (threads).
#: Whether they pay with several blocks side by side depends on the host. On the 2-vCPU EPYC (Zen 4)
#: of 2026-12-06, at two threads: the seed's step 4.70 ms with them against 5.00 with the patches
#: (block-1 forward 707 against 815 us, VJP 665 against 658; in-process alternating A/B, 40 rounds
#: of 4 steps); the block alone, forward + backward, 1.53 against 1.67 ms (batch 100; 3.33 against
#: 4.57 at 256), ``python -m benchmarks.crossovers shifted_planes --rounds 7``. The Xeon of
#: 2026-12-05 ran them slower side by side (in the step, forward 778 -> 684 us and VJP 608 -> 839
#: with the patches), and this was 1 there.
SHIFTED_MAX_BLOCKS = 2**30


def _item_bytes(k1: int, cout: int, taps: int, pixels: int, itemsize: int) -> int:
    """What one image's block holds: its patches and its offset planes."""
    return (k1 + cout) * taps * pixels * itemsize


def takes_shifted_planes(x_shape: tuple[int, ...], geo: Geometry) -> bool:
    """One input channel, stride 1, dilation 1: the patches are copies of a few shifted planes."""
    return x_shape[3] == 1 and geo[1] == (1, 1) and geo[2] == (1, 1)


def shifted_planes(x: np.ndarray, geo: Geometry, kernel: tuple[int, int], out: np.ndarray) -> None:
    """R[u, v] = x_pad[:, KH_p oy + u, KW_p ox + v] into ``out``, (KH_p + KH - 1, KW_p + KW - 1, N,
    OH_p, OW_p), for NHWC ``x`` of one channel and a geometry :func:`takes_shifted_planes`."""
    (kh, kw), (oh, ow), (ph, pw) = geo[0], geo[4], kernel
    xp = padded(x, geo)[..., 0]
    s0, s1, s2 = xp.strides
    shape = (ph + kh - 1, pw + kw - 1, x.shape[0], oh // ph, ow // pw)
    np.copyto(out, np.lib.stride_tricks.as_strided(xp, shape, (s1, s2, s0, ph * s1, pw * s2)))


def shifted_kernel(weight: np.ndarray, bias: np.ndarray | None, kernel: tuple[int, int],
                   dtype: Any) -> np.ndarray:  # fmt: skip
    """The (KH_p KW_p C_out, U V + 1) matrix that multiplies the shifted planes (U, V) and a row of
    ones into the convolution's output at every window offset: row (a, b, c) holds kernel channel
    c at columns (a + i, b + j), the bias in the last column, zeros elsewhere (patch row (i, j) at
    window offset (a, b) is plane (a + i, b + j))."""
    kh, kw, _, cout = weight.shape
    ph, pw = kernel
    u, v = ph + kh - 1, pw + kw - 1
    w = np.zeros((ph, pw, cout, u * v + 1), dtype)
    grid = np.reshape(w[..., :-1], (ph, pw, cout, u, v), copy=False)
    taps = weight[:, :, 0, :].transpose(2, 0, 1)  # (C_out, KH, KW)
    for a in range(ph):
        for b in range(pw):
            grid[a, b, :, a : a + kh, b : b + kw] = taps
    if bias is not None:
        w[..., -1] = bias
    return w.reshape(ph * pw * cout, u * v + 1)


def forward(ctx: Any, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, geo: Geometry,
            kernel: tuple[int, int], channel_major: bool = False) -> np.ndarray:  # fmt: skip
    """maxpool(relu(conv(x) + bias)) as NHWC, or as (C_out, M) with ``channel_major`` (for a batch
    norm that follows: convpoolbn.py); ``ctx.saved`` gets (z, pooled): the offset planes (taps,
    C_out, M) and their maxima (C_out, M); ``ctx.conv_saved`` the patches (K + 1, taps, M)."""
    kh, kw, cin, cout = weight.shape
    k = kh * kw * cin
    n, (oh, ow), (ph, pw) = x.shape[0], geo[4], kernel
    taps, pixels = ph * pw, (oh // ph) * (ow // pw)
    dtype = np.result_type(weight, x)
    z = np.empty((taps, cout, n * pixels), dtype)
    pooled = np.empty((cout, n * pixels), dtype)
    out = np.empty((cout, n * pixels) if channel_major else (n * pixels, cout), dtype)
    min_block = items_per_block(_item_bytes(k + 1, cout, taps, pixels, x.itemsize))
    shifted = takes_shifted_planes(x.shape, geo) and blocks(n, min_block) <= SHIFTED_MAX_BLOCKS
    if shifted:
        u, v = ph + kh - 1, pw + kw - 1
        # the shifted planes and a row of ones (the bias), multiplied by the kernel placed at
        # each window offset's shift: (taps C_out, U V + 1) @ (U V + 1, M) gives z at once
        stack = np.empty((u * v + 1, n * pixels), x.dtype)
        stack[-1] = 1
        planes = stack[:-1].reshape(u, v, n, oh // ph, ow // pw)
        w_s = shifted_kernel(weight, bias, kernel, dtype)
        cols = stack
    else:
        pt = np.empty((k + 1, ph, pw, n, oh // ph, ow // pw), x.dtype)  # the last row ones
        cols = pt.reshape(k + 1, taps, n * pixels)
        w_t = np.empty((cout, k + 1), dtype)
        w_t[:, :k] = weight.reshape(k, cout).T
        w_t[:, k] = 0 if bias is None else bias

    def images(start: int, stop: int) -> None:
        rs = slice(start * pixels, stop * pixels)
        if shifted:
            shifted_planes(x[start:stop], geo, kernel, planes[:, :, start:stop])
            np.matmul(w_s, stack[:, rs], out=z.reshape(taps * cout, -1)[:, rs])
        else:
            patches_offset_major(x[start:stop], geo, kernel, pt[:, :, :, start:stop])
            np.matmul(w_t, cols[:, :, rs].swapaxes(0, 1), out=z[:, :, rs])
        running_max(pooled[:, rs], z[:, :, rs])
        # the ReLU after the maximum (they commute); NaN kept, as relu's
        if channel_major:
            np.maximum(pooled[:, rs], 0, out=out[:, rs])
            return
        # a channel at a time: the whole transpose loops over runs of C_out floats (the seed's
        # first block: 66 -> 34 us)
        for c in range(cout):
            np.maximum(pooled[c, rs], 0, out=out[rs, c])

    with blas_for(cols.size * cout):  # few channels: one BLAS thread (threads.py)
        parallel_for(images, n, min_block=min_block)
    # the VJP's kernel gradient reads the shifted planes (2.5 times smaller) or the patches
    ctx.conv_saved = cols
    ctx.save_for_backward(z, pooled)
    return out if channel_major else out.reshape(n, oh // ph, ow // pw, cout)


def holds_nan(pooled: np.ndarray) -> bool:
    """Whether some window's maximum is NaN (it is exactly when the window holds one)."""
    return pooled.dtype.kind == "f" and bool(np.isnan(np.max(pooled, initial=-np.inf)))


def first_max_hits(planes: np.ndarray, pooled: np.ndarray, nans: bool | None = None) -> np.ndarray:
    """(taps, ...) booleans: where offset plane k holds its window's first maximum (offsets in
    row-major order), or its window's first NaN: pool.first_max's rule, the offsets one axis.
    ``nans``: :func:`holds_nan` of ``pooled`` (or of a whole batch it is part of) when known, so
    that blocks of images need not test it each."""
    hits = np.equal(planes, pooled)
    if holds_nan(pooled) if nans is None else nans:
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


def _kernel_gradient_shifted(stack: np.ndarray, d: np.ndarray, k_hw: tuple[int, int],
                             kernel: tuple[int, int]) -> np.ndarray:  # fmt: skip
    """:func:`_kernel_gradient` for a (KH, KW) = ``k_hw`` kernel from the shifted planes with a row
    of ones, (U V + 1, rows), and d (taps, C_out, rows): G = R D^T, then tap (i, j) sums G[(a + i,
    b + j), (a, b)] over the window offsets (a, b), and the bias row sums the ones' row of G."""
    taps, cout = d.shape[:2]
    (kh, kw), (ph, pw) = k_hw, kernel
    d2 = d.reshape(taps * cout, -1)
    # by slabs: one (U V, rows) (rows, taps C_out) product took 2x longer on two threads at once
    # than alone (50 images: 63 us alone, 204 us for two blocks side by side; by slabs 67 and 121)
    g = tall_product_t(stack, d2.T)
    out = np.empty((kh * kw + 1, cout), g.dtype)
    by_offset = g[:-1].reshape(ph + kh - 1, pw + kw - 1, ph, pw, cout)
    out[:-1] = by_offset[_tap_index(kh, kw, ph, pw)].sum(axis=(2, 3)).reshape(kh * kw, cout)
    out[-1] = g[-1].reshape(taps, cout).sum(axis=0)
    return out


@lru_cache(maxsize=16)
def _tap_index(kh: int, kw: int, ph: int, pw: int) -> tuple[np.ndarray, ...]:
    """The index [a + i, b + j, a, b] of G (U, V, KH_p, KW_p), shaped (KH, KW, KH_p, KW_p): plane (a +
    i, b + j) at window offset (a, b) is kernel tap (i, j)."""
    i, j, a, b = np.ix_(range(kh), range(kw), range(ph), range(pw))
    return a + i, b + j, a, b


def kernel_vjp(ctx: Any, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(g_weight, g_bias) of :func:`forward` for the NHWC output gradient ``grad``: g [pooled > 0]
    routed to each window's first maximum, then P^T d, a block of images per thread."""
    pooled = ctx.saved[1]
    cout, rows = pooled.shape
    gq = np.empty((cout, rows), grad.dtype)
    # relu'(0) = 0; NaN > 0 is False, as relu's
    np.multiply(grad.reshape(rows, cout).T, pooled > 0, out=gq)
    return routed_kernel_vjp(ctx, gq, grad.shape[0])


def routed_kernel_vjp(ctx: Any, gq: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kernel_vjp` from the gradient of the pooled maxima, (C_out, M) channel-major, the
    ReLU's mask applied: routed to each window's first maximum, then P^T d."""
    z, pooled = ctx.saved[:2]
    cols = ctx.conv_saved
    kernel = ctx.inputs[-1]
    shifted = cols.ndim == 2  # shifted planes and ones (U V + 1, M), not patches (K + 1, taps, M)
    taps, cout, rows = z.shape
    pixels = rows // max(1, n)
    nans = holds_nan(pooled)

    def images(start: int, stop: int) -> np.ndarray:
        rs = slice(start * pixels, stop * pixels)
        d = np.multiply(first_max_hits(z[:, :, rs], pooled[:, rs], nans), gq[:, rs])
        if shifted:
            k_hw = ctx.inputs[1].data.shape[:2]
            return _kernel_gradient_shifted(cols[:, rs], d, k_hw, kernel)
        return _kernel_gradient(cols[:, :, rs], d, pixels)

    k1 = math.prod(ctx.inputs[1].data.shape[:3]) + 1  # the patches' K + 1 rows
    item = _item_bytes(k1, cout, taps, pixels, z.itemsize)
    with blas_for(cols.size * cout):
        parts = parallel_for(images, n, min_block=items_per_block(item))
    h = parts[0]
    for part in parts[1:]:
        h = h + part
    return h[:-1], h[-1]
