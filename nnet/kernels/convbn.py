"""A narrow convolution, training-mode batch norm, ReLU and max-pooling as one primitive.

Batch norm of a convolution's output needs no pass over that output: with P the patch matrix
(M, K) and Pc = P - mean(P) its centred columns, the convolution is z = P W + b, its batch mean
mean(P) W + b, and its centred value Pc W, so the batch variance is diag(W^T S W) with the K x K
patch covariance S = Pc^T Pc / M, and the normalised output is one product y = Pc (W s) + beta with
s = gamma / sqrt(var + eps) per channel. The VJP needs one product too: with H = Pc^T G_y, the
kernel gradient is (H - S W diag(g_gamma / sqrt(var + eps))) diag(s), g_gamma = diag(W^T H) /
sqrt(var + eps), and the convolution's bias gets exactly 0 (batch norm removes any shift). Worth it
when K = KH KW C_in is small (S costs M K^2), as for a first layer over a few input channels.

The patch rows are ordered window-offset-major for the pool that follows, so the maxima, the ReLU
(applied after the pool, as in bnpool.py) and the gradient's routing run over contiguous planes.
The VJP routes and multiplies a block of images per thread and one pool offset at a time (its G_y
slice stays in cache for the product), the blocks' sums added afterwards.
See derivations.md#convolution-batch-norm-relu-and-max-pooling-fused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.tensor import Tensor
from nnet.kernels import winograd
from nnet.kernels.batchnorm import recorded_vjp
from nnet.kernels.bnpool import block_sum, recorded_routing
from nnet.kernels.channels import column_sums, per_channel, plane_sums, relu
from nnet.kernels.conv import Conv2d
from nnet.kernels.im2col import Geometry, patch_windows
from nnet.kernels.pool import first_max, running_max
from nnet.threads import blocks, items_per_block, parallel_for

#: Rows of P^T (K + 1) at least when the patch products run on several threads: OpenBLAS runs
#: products with fewer rows slower on two threads at once than one after the other (on the 2-core
#: test machine, (10 x 3136) @ (3136 x 32) 39 times per thread: 2.55 ms one after the other, 3.08
#: ms at once; 16 rows 2.70 and 1.42 ms; ``python -m benchmarks.crossovers patch_rows``).
PATCH_ROWS = 16

#: Rows per slab of the tall product Pc^T G (OpenBLAS multiplies a huge shared
#: dimension into a tiny result slowly; a batch of slabs summed afterwards is fast).
_SLAB = 2048


def tall_product_t(a_t: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a_t @ b`` for a (K, M) ``a_t`` with contiguous rows and an (M, N) ``b``, by slabs of rows."""
    k, m = a_t.shape
    slabs = m // _SLAB
    if slabs < 4:
        return a_t @ b
    head = slabs * _SLAB
    parts = a_t[:, :head].reshape(k, slabs, _SLAB).swapaxes(0, 1) @ b[:head].reshape(
        slabs, _SLAB, b.shape[1]
    )
    out = parts.sum(axis=0)
    if head < m:
        out += a_t[:, head:] @ b[head:]
    return out


def patches_offset_major(
    x: np.ndarray, geo: Geometry, kernel: tuple[int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """The patch matrix of ``x`` transposed, with a row of ones below it: (K + 1, M), the columns
    (output pixels) in window-offset-major order (KH_p, KW_p, N, OH_p, OW_p) for pool windows
    ``kernel`` that tile the convolution's output. The ones make the products add beta and sum G_y.
    With ``out``, a (K + 1, KH_p, KW_p, N, OH_p, OW_p) array (or a view of one), the patches are
    written there and ``out`` is returned."""
    n, c = x.shape[0], x.shape[3]
    (kh, kw), (oh, ow), (ph, pw) = geo[0], geo[4], kernel
    k = kh * kw * c
    dst = np.empty((k + 1, ph, pw, n, oh // ph, ow // pw), x.dtype) if out is None else out
    # one copy straight from the windows view (splitting its output axes is still a view): the
    # patches written column-major and then reordered took two passes (the seed's first block,
    # (100, 28, 28, 1): 350 -> 242 us; its second's input (100, 14, 14, 4): 559 -> 358 us)
    windows = patch_windows(x, geo).reshape(n, oh // ph, ph, ow // pw, pw, kh, kw, c)
    target = dst[:k].reshape(kh, kw, c, ph, pw, n, oh // ph, ow // pw)
    np.copyto(target, windows.transpose(5, 6, 7, 2, 4, 0, 1, 3))
    dst[k] = 1
    return dst.reshape(k + 1, -1) if out is None else out


#: Unreachable through the layers (the registry picks this op only for an input that takes no
#: gradient); a direct caller that breaks that contract is told what went wrong.
_NO_INPUT_GRADIENT = (
    "ConvBatchNormReluPool computes no gradient for its input: use it only on an input that does "
    "not require one (nnet.nn.Sequential does), else Conv2d, BatchNorm2d, ReLU and MaxPool2d apart"
)


class ConvBatchNormReluPool(Function):
    """z = maxpool(relu(bn(conv(x)))), the batch norm in training mode, windows tiling the conv's
    output; VJP for the kernel, the conv bias (0), gamma and beta, through the patch covariance. x
    takes no gradient here. See derivations.md#convolution-batch-norm-relu-and-max-pooling-fused."""

    def forward(ctx, x, weight, conv_bias, gamma, beta, eps, stats, geo, kernel):
        kh, kw, cin, cout = weight.shape
        k = kh * kw * cin
        w2 = weight.reshape(k, cout)
        n, (oh, ow), (ph, pw) = x.shape[0], geo[4], kernel
        taps, pixels = ph * pw, (oh // ph) * (ow // pw)
        # three blocks of images per thread: patches and their sums; centring and the covariance;
        # the product, the pool and the ReLU (the last two need the statistics of every image)
        min_block = items_per_block(taps * pixels * cout * x.itemsize)
        # P^T: K rows of patches, a row of ones, and zeros up to PATCH_ROWS when the blocks run on
        # several threads, where OpenBLAS runs products of so few rows slowly (convrelu.py)
        rows_p = max(k + 1, PATCH_ROWS) if blocks(n, min_block) > 1 else k + 1
        pt = np.empty((rows_p, taps, n * pixels), x.dtype)
        pt6 = pt.reshape(rows_p, ph, pw, n, oh // ph, ow // pw)
        m = pt.shape[1] * pt.shape[2]
        ones = np.ones(n * pixels, x.dtype)

        def columns(start: int, stop: int) -> np.ndarray:
            return pt[:, :, start * pixels : stop * pixels].swapaxes(0, 1)  # (taps, rows_p, rows)

        def patches(start: int, stop: int) -> np.ndarray:
            patches_offset_major(x[start:stop], geo, kernel, pt6[: k + 1, :, :, start:stop])
            pt6[k + 1 :, :, :, start:stop] = 0
            return (columns(start, stop) @ ones[: (stop - start) * pixels]).sum(axis=0)

        mu = block_sum(parallel_for(patches, n, min_block=min_block)) / m

        def covariance(start: int, stop: int) -> np.ndarray:
            # every row centred, the ones and zeros to zero rows (their covariance is dropped), so
            # that the product has all the rows; then the ones are put back
            pc = columns(start, stop)
            pc -= mu[:, None]  # Pc^T
            cov = (pc @ pc.swapaxes(1, 2)).sum(axis=0)
            pt[k, :, start * pixels : stop * pixels] = 1
            return cov

        cov = (block_sum(parallel_for(covariance, n, min_block=min_block)) / m)[:k, :k]
        mu = mu[:k]
        sw = cov @ w2
        var = np.einsum("kc,kc->c", w2, sw)
        invstd = 1.0 / np.sqrt(var + eps)
        scale = invstd if gamma is None else gamma * invstd
        # y = Pc (W diag(s)) + beta, the ones row times beta: window-offset-major rows
        w_ext = np.empty((k + 1, cout), np.result_type(w2, scale))
        np.multiply(w2, scale, out=w_ext[:k])
        w_ext[k] = 0 if beta is None else beta
        y = np.empty((taps, n * pixels, cout), np.result_type(pt, w_ext))
        pooled = np.empty(y.shape[1:], y.dtype)
        out = np.empty_like(pooled)

        def normalise(start: int, stop: int) -> None:
            r = slice(start * pixels, stop * pixels)
            np.matmul(pt[: k + 1, :, r].swapaxes(0, 1).swapaxes(1, 2), w_ext, out=y[:, r])
            running_max(pooled[r], y[:, r])
            relu(pooled[r], out=out[r])

        parallel_for(normalise, n, min_block=min_block)
        ctx.save_for_backward(pt.reshape(rows_p, -1), y, pooled, sw, invstd)
        mean = mu @ w2
        stats.mean = mean if conv_bias is None else mean + conv_bias
        stats.var = var
        return out.reshape(n, oh // ph, ow // pw, cout)

    def vjp_arrays(ctx, grad):
        _, weight, _, gamma, _, _, _, _, _ = ctx.inputs
        need_x, need_w, need_b, need_gamma, need_beta = ctx.needs_input_grad[:5]
        if need_x:
            raise RuntimeError(_NO_INPUT_GRADIENT)
        pt, y, pooled, sw, invstd = ctx.saved
        taps, rows, cout = y.shape
        n = grad.shape[0]
        pixels = rows // max(1, n)
        planes = pt.reshape(pt.shape[0], taps, rows)
        gpool = grad.reshape(pooled.shape)

        def block(start: int, stop: int) -> np.ndarray:
            # this block's (Pc^T G_y; 1^T G_y), its G_y routed from the pool a tap at a time
            r = slice(start * pixels, stop * pixels)
            gp = gpool[r] * (pooled[r] > 0)
            gy = np.empty(gp.shape, grad.dtype)
            h = np.zeros((pt.shape[0], cout), np.result_type(pt, grad))
            for tap, hit in first_max(list(y[:, r]), pooled[r], taps - 1):
                np.multiply(gp, hit, out=gy)
                h += tall_product_t(planes[:, tap, r], gy)
            return h

        min_block = items_per_block(y.nbytes // max(1, n))
        h_ext = block_sum(parallel_for(block, n, min_block=min_block))
        w2 = weight.data.reshape(-1, cout)
        k = w2.shape[0]
        h, g_beta = h_ext[:k], h_ext[k]  # (Pc^T G_y; 1^T G_y; the zero rows' zeros)
        g_gamma = np.einsum("kc,kc->c", w2, h) * invstd
        gw = None
        if need_w:
            scale = invstd if gamma is None else gamma.data * invstd
            gw = ((h - sw * (invstd * g_gamma)) * scale).reshape(weight.data.shape)
        gb = np.zeros(cout, grad.dtype) if need_b else None
        return (
            None, gw, gb, g_gamma if need_gamma else None, g_beta if need_beta else None,
            None, None, None, None,
        )  # fmt: skip

    def vjp(ctx, grad):
        if ctx.needs_input_grad[0]:
            raise RuntimeError(_NO_INPUT_GRADIENT)
        _, y, pooled, _, _ = ctx.saved
        return _recorded_block_vjp(ctx, grad, y, pooled)


class WinogradBatchNormReluPool(Function):
    """z = maxpool2x2(relu(bn(conv3x3(x)))), the convolution Winograd's (winograd.py), batch norm in
    training mode; its VJP for every input (the conv bias's is 0). The convolution's output comes
    out as each tile's four output planes, which are the pool's window offsets, so batch norm and
    the pool run on contiguous planes and the VJP hands the convolution its gradient in the same
    layout. As in convrelu.py, the pool takes the maxima of sign(a) times the centred output
    (a = gamma / sqrt(var + eps)), and the normalisation and the ReLU run on the quarter-size
    result, |a| max + beta: the full-size y is never written, and the VJP's sums are quarter-size.
    See derivations.md#convolution-batch-norm-relu-and-max-pooling-fused."""

    def forward(ctx, x, weight, conv_bias, gamma, beta, eps, stats, geo, kernel):
        # the conv bias is left out: batch norm subtracts it again (it only moves the running mean)
        conv = winograd.Forward(x, weight, None, keep=grad_enabled.get(), quads=True)
        n, cout = x.shape[0], weight.shape[3]
        centred = conv.y.reshape(4, -1, cout)  # (4, N H/2 W/2, C_out) planes, owned
        rows = centred.shape[1]
        pixels, m = rows // max(1, n), centred.size // cout
        ones = np.ones(rows, centred.dtype)

        def convolve(start: int, stop: int) -> np.ndarray:
            # these images' convolution, and their sums while the last step is in cache
            conv.images(start, stop)
            return plane_sums(centred[:, start * pixels : stop * pixels], ones)

        mean = block_sum(parallel_for(convolve, n, min_block=conv.step)) / m
        # sign(a) = sign(gamma) wherever 1 / sqrt(var + eps) is finite and positive: the pool of
        # sign(a) (z - mean) runs with the centring, and is redone below if that fails
        sign = np.ones(cout, centred.dtype) if gamma is None else np.sign(gamma)
        signed = centred if bool(np.all(sign > 0)) else np.empty_like(centred)
        pooled = np.empty((rows, cout), centred.dtype)

        def centre(start: int, stop: int) -> np.ndarray:
            rs = slice(start * pixels, stop * pixels)
            part = per_channel(np.subtract, centred[:, rs], mean, out=centred[:, rs])
            if signed is not centred:
                per_channel(np.multiply, part, sign, out=signed[:, rs])
            running_max(pooled[rs], signed[:, rs])
            return plane_sums(np.multiply(part, part), ones)

        min_block = items_per_block(4 * pixels * cout * centred.itemsize)
        var = block_sum(parallel_for(centre, n, min_block=min_block)) / m
        invstd = 1.0 / np.sqrt(var + eps)
        a = invstd if gamma is None else gamma * invstd
        if not np.array_equal(np.sign(a), sign):  # var + eps zero, infinite or NaN
            sign = np.sign(a)
            flat = centred.reshape(-1, cout)
            signed = centred if bool(np.all(sign > 0)) else per_channel(np.multiply, flat, sign)
            signed = signed.reshape(centred.shape)
            running_max(pooled, signed)
        # the pool of y = a (z - mean) + beta is |a| times the pool of sign(a) (z - mean), plus beta
        # (ties where y ties: all of a window when a = 0); the ReLU after it
        out = per_channel(np.multiply, pooled, np.abs(a))
        if beta is not None:
            per_channel(np.add, out, beta, out=out)
        relu(out, out=out)
        ctx.save_for_backward(conv.transforms(), centred, signed, pooled, invstd, a, out)
        stats.mean = mean if conv_bias is None else mean + conv_bias
        stats.var = var
        return out.reshape(n, x.shape[1] // 2, x.shape[2] // 2, cout)

    def vjp_arrays(ctx, grad):
        x, weight, _, _, _, _, _, _, _ = ctx.inputs
        need_x, need_w, need_b, need_gamma, need_beta = ctx.needs_input_grad[:5]
        v, centred, signed, pooled, invstd, a, out = ctx.saved
        taps, rows, cout = centred.shape
        n = grad.shape[0]
        pixels, m = rows // max(1, n), centred.size // cout
        ones = np.ones(rows, grad.dtype)
        # the ReLU's mask (relu'(0) = 0; NaN > 0 is False, as relu's); each window's g goes to
        # its first maximum, where the centred value is sign(a) times the pooled one (the first
        # offset's where a = 0: every y of the window ties there)
        gq = grad.reshape(rows, cout) * (out > 0)
        sign = np.sign(a)
        c_hit = pooled * sign
        if not bool(np.all(sign)):
            np.copyto(c_hit, centred[0], where=sign == 0)
        c_hit *= gq
        g_beta = column_sums(gq, ones)
        g_gamma = column_sums(c_hit, ones) * invstd  # sum g xhat
        gx = gw = None
        if need_x or need_w:
            # dz = a (g_y - g_beta/m - xhat g_gamma/m): per plane c1 (z - mean) + c0, plus a g
            # routed to each window's first maximum; a step of images at a time, right before the
            # convolution's adjoint reads it
            c1 = -a * invstd * g_gamma / m
            c0 = -a * g_beta / m
            ga = per_channel(np.multiply, gq, a)
            dz = np.empty(centred.shape, np.result_type(grad, centred))
            quads = dz.reshape(2, 2, n, x.data.shape[1] // 2, x.data.shape[2] // 2, cout)
            adj = winograd.Adjoint(v, weight.data, x.data.shape, need_x, need_w, True)

            def fill(start: int, stop: int) -> None:
                rs = slice(start * pixels, stop * pixels)
                routed = np.empty((rs.stop - rs.start, cout), dz.dtype)
                for tap, hit in first_max([p[rs] for p in signed], pooled[rs], taps - 1):
                    d = per_channel(np.multiply, centred[tap, rs], c1, out=dz[tap, rs])
                    per_channel(np.add, d, c0, out=d)
                    d += np.multiply(hit, ga[rs], out=routed)

            def convolve(start: int, stop: int) -> np.ndarray:
                fill(start, stop)
                return adj.images(quads, start, stop)

            gx, gw = adj.finish(parallel_for(convolve, n, min_block=adj.step))
        gb = np.zeros(cout, grad.dtype) if need_b else None
        return (
            gx, gw, gb, g_gamma if need_gamma else None, g_beta if need_beta else None,
            None, None, None, None,
        )  # fmt: skip

    def vjp(ctx, grad):
        _, _, signed, pooled, _, _, out = ctx.saved
        positive = (out > 0).reshape(grad.shape).astype(grad.dtype)
        gp = grad * Tensor._make(positive, False, None)
        return _recorded_block_vjp(ctx, gp, signed, pooled, mask=False)


def _recorded_block_vjp(ctx: Any, grad: Tensor, y: np.ndarray, pooled: np.ndarray,
                        mask: bool = True) -> tuple:  # fmt: skip
    """The block's VJP as nnet ops (create_graph), the composition's: the convolution recomputed as
    a ``Conv2d`` op so that batch norm's VJP depends on the kernel and the input, the routing by
    ``MaxPool2dBackward`` to the first maxima of the planes ``y`` (``pooled`` their maxima, whose
    positives are the ReLU's mask unless ``mask`` is False: ``grad`` then has it already), batch
    norm's VJP, then the convolution's own (recorded) VJP."""
    x, weight, conv_bias, gamma, _, eps, _, geo, kernel = ctx.inputs
    token = grad_enabled.set(True)  # a hooked backward (trace, anomaly) calls this unrecorded
    try:
        z = Conv2d.apply(x, weight, conv_bias, geo)
    finally:
        grad_enabled.reset(token)
    gy = recorded_routing(grad, y, pooled, z.data.shape, kernel, mask)
    needs = ctx.needs_input_grad
    conv_needs = needs[0] or needs[1] or needs[2]
    gz, g_gamma, g_beta = recorded_vjp((conv_needs, *needs[3:5]), gy, z, gamma, eps)
    gx = gw = gb = None
    if conv_needs and z.grad_fn is not None:
        grads: Any = z.grad_fn.vjp(gz)
        gx, gw, gb, _ = grads
    return gx, gw, gb, g_gamma, g_beta, None, None, None, None
