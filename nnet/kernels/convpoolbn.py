"""``conv-relu-pool-bn`` as one primitive: the block of convolution, ReLU and max-pool whose batch
norm (training mode) comes after the pool, on the quarter-size pooled values.

The convolution, the pool and the ReLU run as in :class:`~nnet.kernels.convrelu.ConvReluPool` (the
convolution's output as the pool's window-offset planes, a block of images per thread), and each
thread takes its block's sums of p = relu(max z) and p^2 while p is in cache; batch norm then needs
one more pass over p. Its VJP is batch norm's closed form on p, then ConvReluPool's: both run in
the convolution VJP's blocks, so the full-size input gradient of a batch norm on its own is never
written. With few output channels (below convrelu.CHANNELS_FIRST_BELOW, an input that takes no
gradient: the seed's first block) the conv-relu-pool is patchpool's, channel-major, and batch norm
runs on its (C_out, M) rows: the statistics are row sums, only y goes to NHWC and only g comes
from it (the seed's step: 0.961x at two threads, 0.978x at one, against a separate BatchNorm).
See derivations.md#convolution-relu-batch-norm-and-max-pooling-fused.

SyncBatchNorm takes this kernel too: its ``stats`` carries ``reduce``, a sum over the ranks in
place, and the kernel then normalises with the statistics of every rank's rows (one sum of
``[rows, rows mean, rows var + rows mean^2]`` per channel in the forward, Chan's combination of
each rank's own, and of ``[sum g, sum g (p - mean)]`` in the VJP: the arrays and the order of
:class:`~nnet.distributed.batchnorm_kernel.SyncBatchNormKernel`'s, so ranks that take either
meet alike). See derivations.md#syncbatchnorm-fused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.activation import Relu
from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.kernels import patchpool
from nnet.kernels.batchnorm import recorded_vjp
from nnet.kernels.bnpool import block_sum, recorded_routing
from nnet.kernels.channels import column_sums, per_channel, plane_square_sums, relu
from nnet.kernels.conv import Conv2d
from nnet.kernels.convrelu import (
    CHANNELS_FIRST_BELOW,
    ONE_PASS_CANCELLATION,
    Planes,
    conv_vjp,
    winograd_path,
)
from nnet.kernels.pool import MaxPool2d, first_max, running_max
from nnet.threads import items_per_block, parallel_for


class ConvReluPoolBatchNorm(Function):
    """y = bn(maxpool(relu(conv(x)))), batch norm in training mode on the pooled values, windows
    tiling the conv's output: p = relu of the offset planes' maxima, its statistics summed as it is
    pooled, then a p + beta - a mean with a = gamma / sqrt(var + eps); VJP: batch norm's
    closed form on p, g_p [p > 0] to each window's first maximum, then the convolution's. See
    derivations.md#convolution-relu-batch-norm-and-max-pooling-fused."""

    def forward(ctx, x, weight, conv_bias, gamma, beta, eps, stats, geo, kernel):
        ctx.channels_first = (
            not winograd_path(x.shape, weight.shape, geo, kernel)
            and weight.shape[3] < CHANNELS_FIRST_BELOW
        )
        if ctx.channels_first:
            return _forward_channels_first(ctx, x, weight, conv_bias, gamma, beta, eps, stats,
                                           geo, kernel)  # fmt: skip
        planes = Planes(x, weight, conv_bias, geo, kernel)
        z = planes.z
        _, rows, cout = z.shape
        pooled = np.empty((rows, cout), z.dtype)
        p = np.empty_like(pooled)
        ones = np.ones(rows, z.dtype)

        def pool(a: int, b: int) -> np.ndarray:
            rs = planes.rows(a, b)
            running_max(pooled[rs], z[:, rs])
            part = relu(pooled[rs], out=p[rs])
            return np.stack([column_sums(part, ones[rs]), plane_square_sums(part[None])])

        sums, square_sums = block_sum(planes.run(pool))
        mean = sums / rows
        var = square_sums / rows - mean * mean
        n = x.shape[0]
        min_block = items_per_block(p.nbytes // max(1, n))
        pixels = rows // max(1, n)
        if not bool(np.all(var >= square_sums / rows * ONE_PASS_CANCELLATION)):
            # mean^2 close to E[p^2] (or NaN): var from the centred values, as the composition

            def squares(start: int, stop: int) -> np.ndarray:
                sq = per_channel(np.subtract, p[start * pixels : stop * pixels], mean)
                return column_sums(np.multiply(sq, sq, out=sq), ones[: sq.shape[0]])

            var = block_sum(parallel_for(squares, n, min_block=min_block)) / rows
        ctx.count, mean, var = _over_ranks(stats, rows, mean, var)
        invstd = 1.0 / np.sqrt(var + eps)
        a = invstd if gamma is None else gamma * invstd
        shift = -a * mean if beta is None else beta - a * mean
        out = np.empty_like(p)

        def normalise(start: int, stop: int) -> None:
            # a p + (beta - a mean): two passes (the var test above bounds mean / std by 16)
            rs = slice(start * pixels, stop * pixels)
            per_channel(np.add, per_channel(np.multiply, p[rs], a, out=out[rs]), shift, out=out[rs])

        parallel_for(normalise, n, min_block=min_block)
        ctx.winograd, ctx.conv_saved = planes.winograd, planes.saved()
        ctx.save_for_backward(z, pooled, p, mean, invstd, a)
        stats.mean, stats.var = mean, var
        (oh, ow) = geo[4]
        return out.reshape(n, oh // kernel[0], ow // kernel[1], cout)

    def vjp_arrays(ctx, grad):
        need_gamma, need_beta = ctx.needs_input_grad[3:5]
        if ctx.channels_first:
            return _vjp_channels_first(ctx, grad)
        z, pooled, p, mean, invstd, a = ctx.saved
        taps, rows, cout = z.shape
        g = grad.reshape(rows, cout)
        n = grad.shape[0]
        pixels = rows // max(1, n)
        ones = np.ones(rows, g.dtype)

        def sums(start: int, stop: int) -> np.ndarray:
            # (sum g, sum g (p - mean)), a block of images per thread
            rs = slice(start * pixels, stop * pixels)
            pc = per_channel(np.subtract, p[rs], mean)
            pc *= g[rs]
            part = ones[: rs.stop - rs.start]
            return np.stack([column_sums(g[rs], part), column_sums(pc, part)])

        min_block = items_per_block(p.nbytes // max(1, n))
        g_beta, g_c = block_sum(parallel_for(sums, n, min_block=min_block))
        g_gamma = g_c * invstd  # sum g phat
        c1, c0 = _coefficients(ctx, g_beta, g_c, g_gamma, rows, mean, invstd, a)

        def grads(rs: slice, target: object) -> object:
            gq = per_channel(np.multiply, g[rs], a)
            gq += per_channel(np.multiply, p[rs], c1)
            per_channel(np.add, gq, c0, out=gq)
            gq *= p[rs] > 0  # relu'(0) = 0; NaN > 0 is False, as relu's
            for tap, hit in first_max([q[rs] for q in z], pooled[rs], taps - 1):
                d = target(tap)  # type: ignore[operator]
                np.multiply(hit, gq, out=d)
                yield tap, d

        gx, gw, gb = conv_vjp(ctx, z.shape, g.dtype, grads, "ConvReluPoolBatchNorm")
        return (
            gx, gw, gb, g_gamma if need_gamma else None, g_beta if need_beta else None,
            None, None, None, None,
        )  # fmt: skip

    def vjp(ctx, grad):
        # recorded (create_graph), the composition's: the convolution, the pool and the ReLU
        # recomputed as ops (batch norm's VJP depends on them), batch norm's VJP, then the ReLU's
        # mask and the pool's routing (linear in the gradient), then the convolution's recorded VJP
        x, weight, conv_bias, gamma, _, eps, _, geo, kernel = ctx.inputs
        z_planes, pooled, _, _, _, _ = ctx.saved
        if ctx.channels_first:  # patchpool's channel-first planes, as (taps, rows, C) views
            z_planes, pooled = z_planes.swapaxes(1, 2), pooled.T
        token = grad_enabled.set(True)  # a hooked backward (trace, anomaly) calls this unrecorded
        try:
            z = Conv2d.apply(x, weight, conv_bias, geo)
            p = Relu.apply(MaxPool2d.apply(z, kernel))
        finally:
            grad_enabled.reset(token)
        needs = ctx.needs_input_grad
        conv_needs = needs[0] or needs[1] or needs[2]
        stats = ctx.inputs[6]
        if getattr(stats, "reduce", None) is None:
            gp, g_gamma, g_beta = recorded_vjp((conv_needs, *needs[3:5]), grad, p, gamma, eps)
        else:  # SyncBatchNorm's, over every rank's rows
            gp, g_gamma, g_beta = stats.recorded((conv_needs, *needs[3:5]), grad, p, gamma, eps,
                                                 ctx.count)  # fmt: skip
        gx = gw = gb = None
        if conv_needs:
            gz = recorded_routing(gp, z_planes, pooled, z.data.shape, kernel)
            gx, gw, gb, _ = z.grad_fn.vjp(gz)
        return (gx if needs[0] else None, gw if needs[1] else None, gb if needs[2] else None,
                g_gamma, g_beta, None, None, None, None)  # fmt: skip


def _forward_channels_first(ctx, x, weight, conv_bias, gamma, beta, eps, stats, geo, kernel):
    """:class:`ConvReluPoolBatchNorm`'s forward with few output channels: p = relu(max z) from
    patchpool.forward, channel-major (C_out, M), so that the statistics are row sums and the
    normalisation runs along rows; only y goes to NHWC, a channel at a time."""
    p = patchpool.forward(ctx, x, weight, conv_bias, geo, kernel, channel_major=True)
    cout, rows = p.shape
    sums = np.add.reduce(p, axis=1)
    square_sums = np.einsum("cm,cm->c", p, p)
    mean = sums / rows
    var = square_sums / rows - mean * mean
    if not bool(np.all(var >= square_sums / rows * ONE_PASS_CANCELLATION)):
        # mean^2 close to E[p^2] (or NaN): var from the centred values, as the composition
        centred = p - mean[:, None]
        var = np.einsum("cm,cm->c", centred, centred) / rows
    ctx.count, mean, var = _over_ranks(stats, rows, mean, var)
    invstd = 1.0 / np.sqrt(var + eps)
    a = invstd if gamma is None else gamma * invstd
    shift = -a * mean if beta is None else beta - a * mean
    y = np.multiply(p, a[:, None])
    y += shift[:, None]
    out = np.empty((rows, cout), y.dtype)
    for c in range(cout):  # the whole transpose loops over runs of C_out floats
        out[:, c] = y[c]
    z, pooled = ctx.saved
    ctx.save_for_backward(z, pooled, p, mean, invstd, a)
    stats.mean, stats.var = mean, var
    (oh, ow) = geo[4]
    return out.reshape(x.shape[0], oh // kernel[0], ow // kernel[1], cout)


def _vjp_channels_first(ctx, grad):
    """:class:`ConvReluPoolBatchNorm`'s array VJP after :func:`_forward_channels_first`: batch
    norm's closed form on the channel-major p, the ReLU's mask, then patchpool's routing and
    kernel gradient (the input takes none)."""
    needs = ctx.needs_input_grad
    if needs[0]:
        raise RuntimeError(
            "ConvReluPoolBatchNorm: the patch path computes no gradient for its input: use it "
            "only on an input that does not require one (the layers do)"
        )
    _, _, p, mean, invstd, a = ctx.saved
    cout, rows = p.shape
    gq = np.empty((cout, rows), grad.dtype)
    g = grad.reshape(rows, cout)
    for c in range(cout):
        gq[c] = g[:, c]
    g_beta = np.add.reduce(gq, axis=1)
    t = p - mean[:, None]
    g_c = np.einsum("cm,cm->c", t, gq)  # sum g (p - mean)
    g_gamma = g_c * invstd  # sum g phat
    c1, c0 = _coefficients(ctx, g_beta, g_c, g_gamma, rows, mean, invstd, a)
    gq *= a[:, None]
    gq += np.multiply(p, c1[:, None], out=t)
    gq += c0[:, None]
    gq *= p > 0  # relu'(0) = 0; NaN > 0 is False, as relu's
    gw, gb = patchpool.routed_kernel_vjp(ctx, gq, grad.shape[0])
    return (
        None, gw.reshape(ctx.inputs[1].data.shape) if needs[1] else None,
        gb if needs[2] else None, g_gamma if needs[3] else None, g_beta if needs[4] else None,
        None, None, None, None,
    )  # fmt: skip


def _over_ranks(stats: Any, rows: int, mean: np.ndarray,
                var: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:  # fmt: skip
    """(rows, mean, var) of this rank's pooled values, or, when ``stats.reduce`` sums over the
    ranks (SyncBatchNorm), of every rank's: Chan's combination of each rank's count, mean and
    centred sum of squares, in float64 (see the module docstring)."""
    reduce = getattr(stats, "reduce", None)
    if reduce is None:
        return rows, mean, var
    c = mean.size
    mean64 = mean.astype(np.float64)
    sums = np.concatenate([[rows], rows * mean64, rows * (var + mean64 * mean64)])
    reduce(sums)
    n = round(sums[0])
    stats.count = n
    total_mean = sums[1 : c + 1] / n
    total_var = np.maximum(sums[c + 1 :] / n - total_mean * total_mean, 0.0)
    return n, total_mean.astype(mean.dtype), total_var.astype(var.dtype)


def _coefficients(ctx: Any, g_beta: np.ndarray, g_c: np.ndarray, g_gamma: np.ndarray, rows: int,
                  mean: np.ndarray, invstd: np.ndarray,
                  a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """c1, c0 of g_p = a (g - g_beta/m - phat g_gamma/m) = a g + c1 p + c0 (before the ReLU's
    [p > 0]); the sums over every rank's rows when the forward's were (``ctx.count``) and g_p is
    needed: SyncBatchNormKernel sums them only when its input takes a gradient, and a rank that
    runs it (too few rows for this kernel) must meet this one alike."""
    reduce = getattr(ctx.inputs[6], "reduce", None)
    if reduce is None or not any(ctx.needs_input_grad[:3]):
        c1 = -a * invstd * g_gamma / rows
        return c1, -a * g_beta / rows - c1 * mean
    total = np.concatenate([g_beta, g_c]).astype(np.float64)
    reduce(total)
    c = g_beta.size
    g_beta, g_gamma = total[:c].astype(g_c.dtype), total[c:].astype(g_c.dtype) * invstd
    c1 = -a * invstd * g_gamma / ctx.count
    return c1, -a * g_beta / ctx.count - c1 * mean
