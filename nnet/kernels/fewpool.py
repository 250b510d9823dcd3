"""conv-relu-pool as one primitive where the input takes a gradient and has few channels (below
im2col.COLUMN_MAJOR_BELOW) and the convolution has stride 1 (the seed network's second block).

As three ops the block records a convolution, a ReLU and a max-pool, and the pool's forward and
VJP run on one thread after the convolution's blocks. Here a block of images per thread does it
all while the block is in cache: its patches and product (fewchannels.py), the bias, the
offset-major copy of the output that the pool's maxima run on (pool.offset_major) and the ReLU
after the maximum (they commute). The VJP's blocks are the forward's: g [pooled > 0] routed to each
window's first maximum, copied back to NHWC (pool.from_offset_major), then the block's share of
the kernel gradient and its input gradient (fewchannels.input_grad_shifted). The recorded VJP is
:class:`~nnet.kernels.convrelu.ConvReluPool`'s, whose planes and maxima have the same layout.
See derivations.md#convolution-relu-batch-norm-and-max-pooling-fused.
"""

from __future__ import annotations

import numpy as np

from nnet.autograd.linalg import tall_product
from nnet.kernels import fewchannels
from nnet.kernels.channels import column_sums, per_channel, relu
from nnet.kernels.convrelu import ConvReluPool
from nnet.kernels.im2col import COLUMN_MAJOR_BELOW, Geometry
from nnet.kernels.pool import first_max, from_offset_major, offset_major, running_max
from nnet.threads import blas_for, items_per_block, parallel_for


def applies(w_shape: tuple[int, ...], geo: Geometry) -> bool:
    """Few input channels and a stride-1 geometry whose taps are shifts (fewchannels.shifts_fit);
    the caller checks that the pool's windows tile the output."""
    return w_shape[2] < COLUMN_MAJOR_BELOW and fewchannels.shifts_fit(geo)


def _min_block(k: int, cout: int, pixels: int, itemsize: int) -> int:
    """Images per block: an image's patches, its output and the output's offset-major copy."""
    return items_per_block((k + 2 * cout) * pixels * itemsize)


class FewChannelConvReluPool(ConvReluPool):
    """z = maxpool(relu(conv(x))) for few input channels, the input taking a gradient: the maxima
    of the output's offset planes, the ReLU after them; VJP: g [z > 0] to each window's first
    maximum, then the convolution's, a block of images per thread. See
    derivations.md#convolution-relu-batch-norm-and-max-pooling-fused."""

    def forward(ctx, x, weight, bias, geo, kernel):
        kh, kw, cin, cout = weight.shape
        n, (oh, ow), (ph, pw) = x.shape[0], geo[4], kernel
        k, taps, quarter = kh * kw * cin, ph * pw, (oh // ph) * (ow // pw)
        w2 = weight.reshape(k, cout)
        dtype = np.result_type(x, weight)
        buf = np.empty((n, oh, ow, kh, kw, cin), x.dtype)
        cols = buf.reshape(-1, k)  # (M, K), rows contiguous (fewchannels.patch_rows)
        z = np.empty((n, oh, ow, cout), dtype)
        planes = np.empty((taps, n, oh // ph, ow // pw, cout), dtype)
        pooled = np.empty((n * quarter, cout), dtype)
        out = np.empty_like(pooled)

        def images(start: int, stop: int) -> None:
            fewchannels.patch_rows(x[start:stop], geo, buf[start:stop])
            rows = z[start:stop].reshape(-1, cout)
            np.matmul(cols[start * oh * ow : stop * oh * ow], w2, out=rows)
            if bias is not None:
                per_channel(np.add, rows, bias, out=rows)
            offset_major(z[start:stop], kernel, planes[:, start:stop])
            q = slice(start * quarter, stop * quarter)
            running_max(pooled[q], planes[:, start:stop].reshape(taps, -1, cout))
            relu(pooled[q], out=out[q])

        with blas_for(cols.size * cout):  # few channels: one BLAS thread (threads.py)
            parallel_for(images, n, min_block=_min_block(k, cout, oh * ow, x.itemsize))
        ctx.winograd, ctx.channels_first = False, False
        ctx.conv_saved = cols
        ctx.save_for_backward(planes.reshape(taps, -1, cout), pooled)
        return out.reshape(n, oh // ph, ow // pw, cout)

    def vjp_arrays(ctx, grad):
        x, weight, _, geo, kernel = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        planes, pooled = ctx.saved
        cout = weight.data.shape[3]
        w2 = weight.data.reshape(-1, cout)
        cols = ctx.conv_saved
        n, (oh, ow) = x.data.shape[0], geo[4]
        taps, quarter = planes.shape[0], pooled.shape[0] // max(1, n)
        gq = grad.reshape(pooled.shape) * (pooled > 0)  # relu'(0) = 0; NaN > 0 is False
        gx = np.empty(x.data.shape, np.result_type(gq, w2)) if need_x else None

        def images(start: int, stop: int) -> np.ndarray | None:
            q = slice(start * quarter, stop * quarter)
            dwin = np.empty((taps, stop - start, oh // kernel[0], ow // kernel[1], cout), gq.dtype)
            flat = dwin.reshape(taps, -1, cout)
            for tap, hit in first_max([p[q] for p in planes], pooled[q], taps - 1):
                np.multiply(gq[q], hit, out=flat[tap])
            dz = np.empty((stop - start, oh, ow, cout), gq.dtype)
            from_offset_major(dwin, kernel, dz)
            g2 = dz.reshape(-1, cout)
            if gx is not None:
                fewchannels.input_grad_shifted(g2, w2, gx[start:stop], geo)
            return tall_product(cols[start * oh * ow : stop * oh * ow], g2) if need_w else None

        with blas_for(cols.size * cout):
            parts = parallel_for(
                images, n, min_block=_min_block(cols.shape[1], cout, oh * ow, gq.itemsize)
            )
        gw = None
        if need_w:
            gw = parts[0]
            for part in parts[1:]:
                gw = gw + part
            gw = gw.reshape(weight.data.shape)
        # the routing moves each window's g to one pixel: the bias's sums are g's
        gb = column_sums(gq, np.ones(gq.shape[0], gq.dtype)) if need_b else None
        return gx, gw, gb, None, None
