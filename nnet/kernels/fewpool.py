"""conv-relu-pool as one primitive where the input takes a gradient and has few channels (below
im2col.COLUMN_MAJOR_BELOW) and the convolution has stride 1 (the seed network's second block).

As three ops the block records a convolution, a ReLU and a max-pool, and the pool's forward and
VJP run on one thread after the convolution's blocks. Here a block of images per thread does it
all while the block is in cache: its patch rows in the pool's window-offset-major order with a
column of ones for the bias (fewchannels.patch_rows_offset_major), so that their product with the
kernel writes the offset planes the pool's maxima run on (pool.offset_major's layout, without its
copy), and the ReLU after the maximum (they commute). The VJP routes g [pooled > 0] to each
window's first maximum for the whole batch, in the offset planes' order that the patches share, so
the kernel and bias gradient is one batched product of the two; the input gradient places the
routed gradient on fewchannels.shift_grid (pool.from_offset_major) and takes
fewchannels.input_grad_from_grid. On two threads these are split by task (:data:`INPUT_SHARE`),
not by images: the routing's and the input gradient's short calls, run side by side, handed the
GIL between the cores at most of them. The recorded VJP is
:class:`~nnet.kernels.convrelu.ConvReluPool`'s, whose planes and maxima have the same layout.
See derivations.md#convolution-relu-batch-norm-and-max-pooling-fused.
"""

from __future__ import annotations

import numpy as np

from nnet.kernels import fewchannels
from nnet.kernels.channels import relu
from nnet.kernels.convrelu import ConvReluPool
from nnet.kernels.im2col import COLUMN_MAJOR_BELOW, Geometry
from nnet.kernels.patchpool import SLAB_ROWS, first_max_hits, holds_nan
from nnet.kernels.pool import from_offset_major, running_max
from nnet.threads import blas_for, blocks, items_per_block, parallel_for


def applies(w_shape: tuple[int, ...], geo: Geometry) -> bool:
    """Few input channels and a stride-1 geometry whose taps are shifts (fewchannels.shifts_fit);
    the caller checks that the pool's windows tile the output."""
    return w_shape[2] < COLUMN_MAJOR_BELOW and fewchannels.shifts_fit(geo)


def _min_block(k: int, cout: int, pixels: int, itemsize: int) -> int:
    """Images per block: an image's patches and output, and room for its pooled maxima."""
    return items_per_block((k + 2 * cout) * pixels * itemsize)


def _offsets_product(a: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The sum over window offsets t and rows of a[t]^T d[t]: (K, C) from offset-major patches
    ``a``, (taps, N, OH_p, OW_p, K), and gradient ``d``, (taps, N, OH_p, OW_p, C), by slabs of about
    :data:`patchpool.SLAB_ROWS` rows of whole images (OpenBLAS multiplies a huge shared dimension
    into a tiny result slowly: the seed's (4 x 4,900 rows) product 1.16x slower in one piece)."""
    taps, n = a.shape[:2]
    pixels = a.shape[2] * a.shape[3]
    per = max(1, SLAB_ROWS // max(1, pixels))  # images per slab
    slabs = n // per
    head = slabs * per
    out = np.zeros((a.shape[-1], d.shape[-1]), np.result_type(a, d))
    if slabs:
        sa = a[:, :head].reshape(taps, slabs, per * pixels, -1)
        sd = d[:, :head].reshape(taps, slabs, per * pixels, -1)
        out += np.matmul(sa.swapaxes(2, 3), sd).sum(axis=(0, 1))
    if head < n:
        ta = a[:, head:].reshape(taps, -1, a.shape[-1])
        out += np.matmul(ta.swapaxes(1, 2), d[:, head:].reshape(taps, -1, d.shape[-1])).sum(axis=0)
    return out


#: The share of the images whose input gradient the calling thread takes in the VJP on two
#: threads, while the worker takes the kernel gradient and the rest: on one thread the seed's
#: second block spent ~760 us on the input gradient and ~320 on the kernel gradient, so the
#: caller's 0.7 of the first balances the worker's 0.3 plus the second.
INPUT_SHARE = 0.7


class FewChannelConvReluPool(ConvReluPool):
    """z = maxpool(relu(conv(x))) for few input channels, the input taking a gradient: the maxima
    of the output's offset planes, the ReLU after them; VJP: g [z > 0] to each window's first
    maximum, then the convolution's, a block of images per thread. See
    derivations.md#convolution-relu-batch-norm-and-max-pooling-fused."""

    def forward(ctx, x, weight, bias, geo, kernel):
        kh, kw, cin, cout = weight.shape
        n, (oh, ow), (ph, pw) = x.shape[0], geo[4], kernel
        k, taps, quarter = kh * kw * cin, ph * pw, (oh // ph) * (ow // pw)
        dtype = np.result_type(x, weight)
        # the bias as the kernel's last row against a column of ones in the patches
        k1 = k + (bias is not None)
        w2 = np.empty((k1, cout), dtype)
        w2[:k] = weight.reshape(k, cout)
        if bias is not None:
            w2[k] = bias
        # the patch rows and the product's output offset-major: each window offset's rows are
        # contiguous, so the product writes the pool's offset planes and the VJP's routed gradient
        # multiplies the patches as it is
        cols = np.empty((taps, n, oh // ph, ow // pw, k1), x.dtype)
        planes = np.empty((taps, n, oh // ph, ow // pw, cout), dtype)
        pooled = np.empty((n * quarter, cout), dtype)
        out = np.empty_like(pooled)

        def images(start: int, stop: int) -> None:
            block = cols[:, start:stop]
            fewchannels.patch_rows_offset_major(x[start:stop], geo, kernel, block[..., :k])
            if bias is not None:
                block[..., k] = 1
            q = slice(start * quarter, stop * quarter)
            z = planes[:, start:stop].reshape(taps, -1, cout)
            np.matmul(block.reshape(taps, -1, k1), w2, out=z)
            running_max(pooled[q], z)
            relu(pooled[q], out=out[q])

        with blas_for(cols.size * cout):  # few channels: one BLAS thread (threads.py)
            parallel_for(images, n, min_block=_min_block(k1, cout, oh * ow, x.itemsize))
        ctx.winograd, ctx.channels_first = False, False
        ctx.conv_saved = cols
        ctx.save_for_backward(planes.reshape(taps, -1, cout), pooled)
        return out.reshape(n, oh // ph, ow // pw, cout)

    def vjp_arrays(ctx, grad):
        x, weight, _, geo, kernel = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        planes, pooled = ctx.saved
        cout = weight.data.shape[3]
        cols = ctx.conv_saved  # (taps, N, OH_p, OW_p, K [+ 1])
        w2 = weight.data.reshape(-1, cout)
        taps, n = cols.shape[:2]
        gq = grad.reshape(pooled.shape) * (pooled > 0)  # relu'(0) = 0; NaN > 0 is False
        gx = np.empty(x.data.shape, np.result_type(gq, w2)) if need_x else None
        oh, ow = geo[4]

        # the routing for all images at once, then the input gradient and the kernel gradient,
        # which both read it, as two tasks (one per thread): on two threads, blocks of images each
        # ran the routing's and the input gradient's many short calls side by side, handing the
        # GIL between the cores at most of them, while here one thread's few long products run
        # beside the other's calls
        dwin = np.empty((taps, n, *cols.shape[2:4], cout), gq.dtype)
        np.multiply(
            first_max_hits(planes, pooled, holds_nan(pooled)), gq, out=dwin.reshape(planes.shape)
        )

        def input_grad(start: int, stop: int) -> None:
            grid = fewchannels.shift_grid((stop - start, cout), geo, gq.dtype)
            from_offset_major(dwin[:, start:stop], kernel, grid[:, :oh, :ow])
            fewchannels.input_grad_from_grid(grid, w2, gx[start:stop], geo)

        def kernel_grad() -> np.ndarray:
            # P^T d summed over the offsets, the bias's row (ones) summing d
            return _offsets_product(cols, dwin)

        # on two threads: the caller the input gradient of the first INPUT_SHARE of the images,
        # the worker the kernel gradient, then the input gradient of the rest
        first = n if blocks(2) == 1 or not need_x else min(n, round(INPUT_SHARE * n))
        work = (
            [lambda: input_grad(0, first)] if need_x else [],
            [*([kernel_grad] if need_w or need_b else []),
             *([lambda: input_grad(first, n)] if need_x and first < n else [])],
        )  # fmt: skip

        def run(a: int, b: int) -> list[np.ndarray | None]:
            return [task() for block in work[a:b] for task in block]

        with blas_for(cols.size * cout):
            parts = parallel_for(run, 2)
        h = next((r for part in parts for r in part if r is not None), None)
        gw = h[: w2.shape[0]].reshape(weight.data.shape) if need_w else None
        # the bias's row of ones sums d, whose routing moved each window's g to one pixel
        gb = h[-1] if need_b else None
        return gx, gw, gb, None, None
