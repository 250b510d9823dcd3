"""Convolution blocks with the ReLU right after the convolution, each as one primitive:
``conv-relu-bn-pool`` (batch norm in training mode after the ReLU) and ``conv-relu-pool``.

Both start from the convolution's output laid out window-offset-major, (KH_p KW_p, N OH_p OW_p,
C_out) for pool windows that tile it, so that the ReLU, the statistics, the maxima and every pass of
the VJP run over contiguous planes: Winograd's output tiles give those planes for free (a 2x2 pool,
winograd.py), else the patch matrix is built in that order with a row of ones that adds the bias
(convbn.py) and the input takes no gradient (a network's first layer).

Batch norm after the ReLU is a per-channel affine map ``y = a r + b'`` of r = relu(z) (a = gamma /
sqrt(var + eps), b' = beta - a mean), and max commutes with an increasing map: the pool takes the
maximum of ``sign(a) r`` and the normalisation runs on the quarter-size result, ``|a| max + b'``.
Only the statistics need the full-size r. In the VJP the pool routes g to each window's first
maximum (that of y, for a != 0; the first offset for a = 0, where every y of the window ties), so
g_beta = sum g and g_gamma = sum g xhat(r at the maximum) are quarter-size sums too, and the
convolution's gradient is, per offset plane, [r > 0] (c1 r + c0) plus the routed a g [r_max > 0].
See derivations.md#convolution-relu-batch-norm-and-max-pooling-fused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnet.autograd.activation import Relu
from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.tensor import Tensor
from nnet.kernels import convbn, patchpool, winograd
from nnet.kernels.batchnorm import recorded_vjp
from nnet.kernels.bnpool import block_sum, recorded_routing
from nnet.kernels.channels import column_sums, per_channel, plane_square_sums, plane_sums, relu
from nnet.kernels.conv import Conv2d, takes_winograd
from nnet.kernels.convbn import patches_offset_major, tall_product_t
from nnet.kernels.im2col import Geometry
from nnet.kernels.pool import first_max, running_max
from nnet.threads import blas_for, blocks, items_per_block, parallel_for

#: ConvReluBatchNormPool takes the variance as E[r^2] - mean^2 from the sums of its first pass,
#: unless that loses more than 8 of its bits to cancellation in some channel (var below this
#: fraction of E[r^2]): then from the centred values in a second pass, as the composition does.
ONE_PASS_CANCELLATION = 2.0**-8

#: Unreachable through the layers (the registry picks the patch path only for an input that takes
#: no gradient); a direct caller that breaks that contract is told what went wrong.
_NO_INPUT_GRADIENT = (
    "{}: the patch path computes no gradient for its input: use it only on an input that does "
    "not require one (the layers do), or where the convolution takes Winograd's F(2x2, 3x3)"
)


#: ConvReluPool's patch path puts fewer output channels than this first (patchpool.py): rows of a
#: few floats are slow in BLAS and NumPy's loops; wider rows are faster as offset planes
#: (:class:`Planes`). ``python -m benchmarks.crossovers channels_first``.
CHANNELS_FIRST_BELOW = 8


def winograd_path(x_shape: tuple[int, ...], w_shape: tuple[int, ...], geo: Geometry,
                  kernel: tuple[int, int]) -> bool:  # fmt: skip
    """Whether the block's convolution runs Winograd's F(2x2, 3x3), whose output tiles are the
    planes of a 2x2 pool."""
    return kernel == (2, 2) and takes_winograd(x_shape, w_shape, geo)


class Planes:
    """z = conv(x) + bias as (KH_p KW_p, N OH_p OW_p, C_out) offset planes (owned, :attr:`z`), a
    block of images per thread (:meth:`run`), so that a kernel runs its own passes over a block's
    rows right after its convolution, in the same thread. :meth:`saved` is what
    :func:`conv_vjp` needs (Winograd's input transforms, or the patches)."""

    def __init__(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                 geo: Geometry, kernel: tuple[int, int]) -> None:  # fmt: skip
        kh, kw, cin, cout = weight.shape
        n, (oh, ow), (ph, pw) = x.shape[0], geo[4], kernel
        self.taps, self.pixels = ph * pw, (oh // ph) * (ow // pw)
        self.x, self.geo, self.kernel = x, geo, kernel
        self.winograd = winograd_path(x.shape, weight.shape, geo, kernel)
        dtype = np.result_type(weight, x)
        if self.winograd:
            self.conv = winograd.Forward(x, weight, bias, keep=grad_enabled.get(), quads=True)
            self.z = self.conv.y.reshape(self.taps, -1, cout)
            self.min_block = self.conv.step
            return
        self.k = k = kh * kw * cin
        self.w_ext = np.empty((k + 1, cout), dtype)
        self.w_ext[:k] = weight.reshape(k, cout)
        self.w_ext[k] = 0 if bias is None else bias
        self.z = np.empty((self.taps, n * self.pixels, cout), dtype)
        self.min_block = items_per_block(self.taps * self.pixels * cout * np.dtype(dtype).itemsize)
        # P^T: K rows of patches, a row of ones (adds the bias, sums the gradient), and zeros up
        # to convbn.PATCH_ROWS when the blocks run on several threads (only the VJP's products read them)
        rows = max(k + 1, convbn.PATCH_ROWS) if blocks(n, self.min_block) > 1 else k + 1
        self.pt = np.empty((rows, ph, pw, n, oh // ph, ow // pw), x.dtype)

    def rows(self, start: int, stop: int) -> slice:
        """The rows of images ``start:stop`` in every plane."""
        return slice(start * self.pixels, stop * self.pixels)

    def images(self, start: int, stop: int) -> None:
        """z for images ``start:stop``."""
        if self.winograd:
            self.conv.images(start, stop)
            return
        k, taps = self.k, self.taps
        patches_offset_major(
            self.x[start:stop], self.geo, self.kernel, self.pt[:, :, :, start:stop]
        )
        self.pt[k + 1 :, :, :, start:stop] = 0
        r = self.rows(start, stop)
        pt = self.pt.reshape(self.pt.shape[0], taps, -1)[: k + 1, :, r]
        np.matmul(pt.transpose(1, 2, 0), self.w_ext, out=self.z[:, r])

    def run(self, then: Callable[[int, int], Any]) -> list[Any]:
        """z for every image; a block of images per thread, ``then(start, stop)`` right after its
        convolution: ``then``'s results in block order."""

        def block(start: int, stop: int) -> Any:
            self.images(start, stop)
            return then(start, stop)

        n = self.x.shape[0]
        # unsplit (the seed's small batches), the products are small: one BLAS thread for them
        macs = 0 if self.winograd else self.z.size * self.w_ext.shape[0]
        with blas_for(macs):
            return parallel_for(block, n, min_block=self.min_block)

    def saved(self) -> np.ndarray | None:
        """What the VJP reads: Winograd's input transforms, or P^T as (rows, M): K rows of patches,
        the ones, then zeros (convbn.PATCH_ROWS)."""
        if self.winograd:
            return self.conv.transforms()
        return self.pt.reshape(self.pt.shape[0], -1)


def conv_vjp(ctx: Any, shape: tuple[int, ...], dtype: Any, grads: Any, name: str) -> tuple:
    """(gx, g_weight, g_bias) of :class:`Planes` whose planes, ``shape`` (taps, rows, C_out),
    get the gradient that ``grads(rows, target)`` yields as (tap, d) for a slice of rows (whole
    images), d written into ``target(tap)``. A block of images per thread: on the patch path each
    plane's d goes into P^T d while it is in cache; on Winograd's, the adjoint's steps read each
    step's d right after it is written (and the bias's sums are taken then)."""
    x, weight = ctx.inputs[0], ctx.inputs[1]
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    taps, rows, cout = shape
    n = x.data.shape[0]
    pixels = rows // max(1, n)
    if ctx.winograd:
        return _winograd_vjp(ctx, shape, dtype, grads)
    if need_x:
        raise RuntimeError(_NO_INPUT_GRADIENT.format(name))
    pt = ctx.conv_saved.reshape(-1, taps, rows)

    def block(start: int, stop: int) -> np.ndarray:
        r = slice(start * pixels, stop * pixels)
        scratch = np.empty((stop - start) * pixels * cout, dtype).reshape(-1, cout)
        h = np.zeros((pt.shape[0], cout), np.result_type(pt, dtype))
        for tap, d in grads(r, lambda tap: scratch):
            h += tall_product_t(pt[:, tap, r], d)  # (P^T d; 1^T d) of this plane's rows
        return h

    # unsplit (the seed's small batches), the block's products are small: one BLAS thread for them
    with blas_for(pt.shape[0] * pt.shape[1] * pt.shape[2] * cout):
        parts = parallel_for(
            block, n, min_block=items_per_block(taps * pixels * cout * np.dtype(dtype).itemsize)
        )
    h_ext = block_sum(parts)  # (P^T d; 1^T d; zeros)
    k = weight.data[..., 0].size
    gw = h_ext[:k].reshape(weight.data.shape) if need_w else None
    return None, gw, h_ext[k] if need_b else None


def _winograd_vjp(ctx: Any, shape: tuple[int, ...], dtype: Any, grads: Any) -> tuple:
    """:func:`conv_vjp` on Winograd's path."""
    x, weight = ctx.inputs[0], ctx.inputs[1]
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    _, rows, cout = shape
    n = x.data.shape[0]
    pixels = rows // max(1, n)
    dz = np.empty(shape, dtype)
    quads = dz.reshape(2, 2, n, x.data.shape[1] // 2, x.data.shape[2] // 2, cout)
    adj = winograd.Adjoint(ctx.conv_saved, weight.data, x.data.shape, need_x, need_w, True)
    ones = np.ones(rows, dtype)

    def block(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        gb = np.zeros(cout, dtype)

        def fill(a: int, b: int) -> None:
            r = slice(a * pixels, b * pixels)
            for _ in grads(r, lambda tap: dz[tap, r]):
                pass
            if need_b:
                gb[...] += plane_sums(dz[:, r], ones)

        fill(start, stop)
        return adj.images(quads, start, stop), gb

    parts = parallel_for(block, n, min_block=adj.step)
    gx, gw = adj.finish([du for du, _ in parts])
    return gx, gw, block_sum([gb for _, gb in parts]) if need_b else None


class ConvReluBatchNormPool(Function):
    """z = maxpool(bn(relu(conv(x)))), batch norm in training mode after the ReLU, windows tiling
    the conv's output: the pool of sign(a) relu(conv(x)), then |a| max + beta - a mean per channel;
    VJP through the routed maxima. See
    derivations.md#convolution-relu-batch-norm-and-max-pooling-fused."""

    def forward(ctx, x, weight, conv_bias, gamma, beta, eps, stats, geo, kernel):
        planes = Planes(x, weight, conv_bias, geo, kernel)
        r = planes.z
        taps, rows, cout = r.shape
        m = taps * rows
        ones = np.ones(rows, r.dtype)
        # sign(a) = sign(gamma) wherever 1 / sqrt(var + eps) is finite and positive: the pool of
        # sign(a) r runs with the ReLU while r is in cache, and is redone below if that fails
        sign = np.ones(cout, r.dtype) if gamma is None else np.sign(gamma)
        signed = r if bool(np.all(sign > 0)) else np.empty_like(r)
        pooled = np.empty((rows, cout), r.dtype)

        def relu_sums_pool(a: int, b: int) -> np.ndarray:
            # in place: z is not kept, r > 0 is its mask; the sums of r and r^2 while r is in cache
            rs = planes.rows(a, b)
            part = relu(r[:, rs], out=r[:, rs])
            if signed is not r:
                per_channel(np.multiply, part, sign, out=signed[:, rs])
            running_max(pooled[rs], signed[:, rs])
            return np.stack([plane_sums(part, ones), plane_square_sums(part)])

        sums, square_sums = block_sum(planes.run(relu_sums_pool))
        mean = sums / m
        var = square_sums / m - mean * mean
        if not bool(np.all(var >= square_sums / m * ONE_PASS_CANCELLATION)):
            # mean^2 close to E[r^2] (or NaN): var from the centred values, as the composition

            def squares(start: int, stop: int) -> np.ndarray:
                sq = per_channel(np.subtract, r[:, planes.rows(start, stop)], mean)
                return plane_sums(np.multiply(sq, sq, out=sq), ones)

            var = block_sum(parallel_for(squares, x.shape[0], min_block=planes.min_block)) / m
        invstd = 1.0 / np.sqrt(var + eps)
        a = invstd if gamma is None else gamma * invstd
        if not np.array_equal(np.sign(a), sign):  # var + eps zero, infinite or NaN
            sign = np.sign(a)
            flat = r.reshape(-1, cout)
            signed = r if bool(np.all(sign > 0)) else per_channel(np.multiply, flat, sign)
            signed = signed.reshape(r.shape)
            running_max(pooled, signed)
        # the pool of y = a r + b' is |a| times the pool of sign(a) r (ties where y ties: all of a
        # window when a = 0)
        shift = -a * mean if beta is None else beta - a * mean
        out = per_channel(np.multiply, pooled, np.abs(a))
        per_channel(np.add, out, shift, out=out)
        ctx.winograd, ctx.conv_saved = planes.winograd, planes.saved()
        ctx.save_for_backward(r, signed, pooled, mean, invstd, a)
        stats.mean, stats.var = mean, var
        n, (oh, ow) = x.shape[0], geo[4]
        return out.reshape(n, oh // kernel[0], ow // kernel[1], cout)

    def vjp_arrays(ctx, grad):
        need_gamma, need_beta = ctx.needs_input_grad[3:5]
        r, planes, pooled, mean, invstd, a = ctx.saved
        taps, rows, cout = r.shape
        m = taps * rows
        g = grad.reshape(rows, cout)
        n = grad.shape[0]
        pixels = rows // max(1, n)
        ones = np.ones(rows, g.dtype)
        sign = np.sign(a)
        ties = not bool(np.all(sign))
        gq = np.empty_like(g)  # a g [r_hit > 0]

        def sums(start: int, stop: int) -> np.ndarray:
            # a block of images per thread, as the convolution's VJP below: (sum g, sum g xc)
            rs = slice(start * pixels, stop * pixels)
            g_rows = g[rs]
            # r where each window's g goes: the maximum of sign(a) r, the first offset where a = 0
            r_hit = pooled[rs] * sign
            if ties:
                np.copyto(r_hit, r[0, rs], where=sign == 0)
            per_channel(np.multiply, g_rows, a, out=gq[rs])
            gq[rs] *= r_hit > 0
            r_hit -= mean
            r_hit *= g_rows
            part = ones[: rs.stop - rs.start]
            return np.stack([column_sums(g_rows, part), column_sums(r_hit, part)])

        min_block = items_per_block(taps * pixels * cout * g.itemsize)
        g_beta, g_xc = block_sum(parallel_for(sums, n, min_block=min_block))
        g_gamma = g_xc * invstd  # sum g xhat
        # dr = a (g_y - g_beta/m - xhat g_gamma/m), times relu's [r > 0]: per plane, where r > 0,
        # c1 r + c0, plus a g [r_hit > 0] routed to the window's maximum
        c1 = -a * invstd * g_gamma / m
        c0 = -a * g_beta / m - c1 * mean

        def grads(rs: slice, target: Any) -> Any:
            gq_rows = gq[rs]
            routed = np.empty(gq_rows.shape, g.dtype)
            for tap, hit in first_max([p[rs] for p in planes], pooled[rs], taps - 1):
                d, r_rows = target(tap), r[tap, rs]
                per_channel(np.multiply, r_rows, c1, out=d)
                per_channel(np.add, d, c0, out=d)
                d *= r_rows > 0
                np.multiply(hit, gq_rows, out=routed)
                d += routed
                yield tap, d

        gx, gw, gb = conv_vjp(ctx, r.shape, g.dtype, grads, "ConvReluBatchNormPool")
        return (
            gx, gw, gb, g_gamma if need_gamma else None, g_beta if need_beta else None,
            None, None, None, None,
        )  # fmt: skip

    def vjp(ctx, grad):
        # recorded (create_graph), the composition's: the convolution and the ReLU recomputed as
        # ops (batch norm's VJP depends on them), the pool's routing, batch norm's VJP, the ReLU's
        # mask, then the convolution's own recorded VJP
        x, weight, conv_bias, gamma, _, eps, _, geo, kernel = ctx.inputs
        _, planes, pooled, _, _, _ = ctx.saved
        token = grad_enabled.set(True)  # a hooked backward (trace, anomaly) calls this unrecorded
        try:
            z = Conv2d.apply(x, weight, conv_bias, geo)
            r = Relu.apply(z)
        finally:
            grad_enabled.reset(token)
        gy = recorded_routing(grad, planes, pooled, z.data.shape, kernel, mask=False)
        needs = ctx.needs_input_grad
        conv_needs = needs[0] or needs[1] or needs[2]
        gr, g_gamma, g_beta = recorded_vjp((conv_needs, *needs[3:5]), gy, r, gamma, eps)
        gx = gw = gb = None
        if conv_needs:
            gz = gr * Tensor._make((z.data > 0).astype(gr.dtype), False, None)
            gx, gw, gb, _ = z.grad_fn.vjp(gz)
        return gx, gw, gb, g_gamma, g_beta, None, None, None, None


class ConvReluPool(Function):
    """z = maxpool(relu(conv(x))) in training, windows tiling the conv's output: the maxima of the
    offset planes, then the ReLU on the quarter-size result (max and ReLU commute, gradients and
    ties included); VJP: g [z > 0] to each window's first maximum, then the convolution's. See
    derivations.md#convolution-relu-batch-norm-and-max-pooling-fused."""

    def forward(ctx, x, weight, bias, geo, kernel):
        ctx.winograd = winograd_path(x.shape, weight.shape, geo, kernel)
        ctx.channels_first = not ctx.winograd and weight.shape[3] < CHANNELS_FIRST_BELOW
        if ctx.channels_first:  # few output channels: channels first (patchpool.py)
            return patchpool.forward(ctx, x, weight, bias, geo, kernel)
        planes = Planes(x, weight, bias, geo, kernel)
        z = planes.z
        pooled = np.empty(z.shape[1:], z.dtype)
        out = np.empty_like(pooled)

        def pool(a: int, b: int) -> None:
            r = planes.rows(a, b)
            running_max(pooled[r], z[:, r])
            relu(pooled[r], out=out[r])

        planes.run(pool)
        ctx.winograd, ctx.conv_saved = planes.winograd, planes.saved()
        ctx.save_for_backward(z, pooled)
        n, (oh, ow) = x.shape[0], geo[4]
        return out.reshape(n, oh // kernel[0], ow // kernel[1], z.shape[-1])

    def vjp_arrays(ctx, grad):
        if ctx.channels_first:
            if ctx.needs_input_grad[0]:
                raise RuntimeError(_NO_INPUT_GRADIENT.format("ConvReluPool"))
            gw, gb = patchpool.kernel_vjp(ctx, grad)
            needs = ctx.needs_input_grad
            gw = gw.reshape(ctx.inputs[1].data.shape) if needs[1] else None
            return None, gw, gb if needs[2] else None, None, None
        z, pooled = ctx.saved
        gq = grad.reshape(pooled.shape) * (pooled > 0)  # relu'(0) = 0; NaN > 0 is False, as relu's

        def grads(rs: slice, target: Any) -> Any:
            for tap, hit in first_max([p[rs] for p in z], pooled[rs], z.shape[0] - 1):
                d = target(tap)
                np.multiply(hit, gq[rs], out=d)
                yield tap, d

        gx, gw, gb = conv_vjp(ctx, z.shape, gq.dtype, grads, "ConvReluPool")
        return gx, gw, gb, None, None

    def vjp(ctx, grad):
        # recorded (create_graph): the ReLU's mask and the pool's routing (linear in grad), then
        # the convolution's recorded VJP, its input and kernel as ops
        x, weight, bias, geo, kernel = ctx.inputs
        z_planes, pooled = ctx.saved
        if ctx.channels_first:  # patchpool's channel-first planes, as (taps, rows, C) views
            z_planes, pooled = z_planes.swapaxes(1, 2), pooled.T
        token = grad_enabled.set(True)  # a hooked backward (trace, anomaly) calls this unrecorded
        try:
            z = Conv2d.apply(x, weight, bias, geo)
        finally:
            grad_enabled.reset(token)
        gz = recorded_routing(grad, z_planes, pooled, z.data.shape, kernel)  # the ReLU's mask too
        gx, gw, gb, _ = z.grad_fn.vjp(gz)
        needs = ctx.needs_input_grad
        return (gx if needs[0] else None, gw if needs[1] else None, gb if needs[2] else None,
                None, None)  # fmt: skip
