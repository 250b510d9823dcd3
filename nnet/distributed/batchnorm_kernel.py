"""SyncBatchNorm's training step as one primitive: array code around one all-reduce in the forward
and one in the backward.

The composition in :class:`~nnet.distributed.SyncBatchNorm` (its oracle, under ``use_fused(False)``)
records a dozen ops per layer, and on 50 images of the seed CNN it cost about 1 ms per layer and step
more than the fused :class:`~nnet.kernels.BatchNorm` that a one-process run takes. Here each rank
centres its own rows on its own mean (so the float32 squares cancel nothing), and one all-reduce of
``[count, sum x, sum (x - mean_r)^2 + count mean_r^2]`` in float64 gives the global mean and variance
(Chan's parallel combination). The backward all-reduces ``[sum g, sum g (x - mean)]`` for the
three-term input gradient over the global batch; the weight and bias gradients stay local, for
DistributedDataParallel to average. See derivations.md#syncbatchnorm-fused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.ops import concatenate, sqrt
from nnet.autograd.tensor import Tensor
from nnet.distributed import node_sum
from nnet.distributed.functional import all_reduce
from nnet.kernels.channels import per_channel


class GlobalStats:
    """Where :class:`SyncBatchNormKernel` reports the global batch's mean, biased variance and
    number of rows."""

    __slots__ = ("count", "mean", "var")

    def __init__(self) -> None:
        self.mean: np.ndarray = np.empty(0)
        self.var: np.ndarray = np.empty(0)
        self.count = 0


class SyncStats(GlobalStats):
    """:class:`GlobalStats` for a fused kernel that computes SyncBatchNorm with the layers before it
    (:class:`~nnet.kernels.ConvReluPoolBatchNorm`): ``reduce`` sums its statistics over the ranks
    in place (as this module's kernel does), ``recorded`` is the recorded VJP over every rank's
    rows (:func:`recorded_vjp`)."""

    __slots__ = ("recorded", "reduce")

    def __init__(self) -> None:
        super().__init__()
        self.reduce = node_sum.all_reduce
        self.recorded = recorded_vjp


class SyncBatchNormKernel(Function):
    """y = (x - mean) w / sqrt(var + eps) + b per channel (the last axis), mean and var over the rows
    of every rank; VJP: dx = w / sqrt(var + eps) (g - mean g - xhat mean(g xhat)), the means over
    every rank's rows, dw = sum g xhat, db = sum g over this rank's rows.
    See derivations.md#syncbatchnorm-fused."""

    op_name = "sync_batch_norm"

    def forward(ctx, x, weight, bias, eps, stats):
        c = x.shape[-1]
        x2 = x.reshape(-1, c)
        m = x2.shape[0]
        ones = np.ones(m, x.dtype)
        local_mean = ones @ x2 / m if m else np.zeros(c, x.dtype)
        centred = per_channel(np.subtract, x2, local_mean)
        y = np.multiply(centred, centred)  # the squares, then the output in the same buffer
        local_m2 = ones @ y
        mean64 = local_mean.astype(np.float64)
        sums = np.concatenate([[m], m * mean64, local_m2 + m * mean64 * mean64])
        node_sum.all_reduce(sums)
        n = round(sums[0])
        if n < 2:
            raise ValueError(
                f"SyncBatchNorm: training needs more than one value per channel over all ranks, "
                f"got {n} (this rank's input {x.shape})"
            )
        mean = sums[1 : c + 1] / n
        var = np.maximum(sums[c + 1 :] / n - mean * mean, 0.0)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        scale = invstd if weight is None else weight * invstd
        # centred holds x - this rank's mean; x - mean is centred - shift. Rather than a pass that
        # re-centres it (9 us of a 65 us forward on the seed's first batch norm, 50 rows a rank),
        # the shift goes into the output's offset and, in the VJP, into two per-channel terms.
        shift = (mean - mean64).astype(x.dtype)
        if not shift.any():  # a world of one: nothing to shift
            shift = None
        offset = bias
        if shift is not None:
            offset = -shift * scale if bias is None else bias - shift * scale
        per_channel(np.multiply, centred, scale, out=y)
        if offset is not None:
            per_channel(np.add, y, offset, out=y)
        ctx.save_for_backward(centred, shift, invstd, ones, n)
        stats.mean, stats.var, stats.count = mean.astype(x.dtype), var.astype(x.dtype), n
        return y.reshape(x.shape)

    def vjp(ctx, grad):
        x, weight, _, eps, _ = ctx.inputs
        *_, n = ctx.saved
        if grad_enabled.get():
            return (*recorded_vjp(ctx.needs_input_grad[:3], grad, x, weight, eps, n), None, None)
        return tuple(
            None if a is None else Tensor._make(a, False, None) for a in ctx.vjp_arrays(grad.data)
        )

    def vjp_arrays(ctx, grad):
        x, weight, _, _, _ = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        centred, shift, invstd, ones, n = ctx.saved  # x - mean = centred - shift (see forward)
        c = centred.shape[1]
        g = grad.reshape(-1, c)
        gb = ones @ g
        t = g * centred
        gt = ones @ t  # sum g (x - mean) = sum g centred - shift sum g
        if shift is not None:
            gt -= shift * gb
        gw = gt * invstd  # sum g xhat over this rank's rows, xhat = (x - mean) invstd
        gx = None
        if need_x:
            # the three-term gradient with the sums over every rank's rows
            total = np.concatenate([gb, gt]).astype(np.float64)
            node_sum.all_reduce(total)
            global_gb, global_gt = total[:c].astype(g.dtype), total[c:].astype(g.dtype)
            k = invstd if weight is None else weight.data * invstd
            a = -global_gt * invstd * invstd / n  # the coefficient of x - mean
            per_channel(np.multiply, centred, a, out=t)
            t += g
            mean_g = global_gb / n  # minus the shift's part of a (x - mean)
            per_channel(np.subtract, t, mean_g if shift is None else mean_g + a * shift, out=t)
            per_channel(np.multiply, t, k, out=t)
            gx = t.reshape(x.data.shape)
        return (gx, gw if need_w else None, gb if need_b else None, None, None)


def recorded_vjp(
    needs: tuple[bool, ...], grad: Tensor, x: Tensor, weight: Tensor | None, eps: float, n: int
) -> tuple[Any, ...]:
    """The VJP (gx, gw, gb) as nnet ops of x and differentiable all-reduces, for
    ``create_graph=True``: differentiable again. Every rank runs the same three all-reduces."""
    c = x.shape[-1]
    x2 = x.reshape(-1, c)
    g = grad.reshape(-1, c)
    centred = x2 - all_reduce(x2.sum(axis=0)) / n
    invstd = 1.0 / sqrt(all_reduce((centred * centred).sum(axis=0)) / n + eps)
    xhat = centred * invstd
    need_x, need_w, need_b = needs
    gx = None
    if need_x:
        gxhat = g if weight is None else g * weight
        sums = all_reduce(concatenate([gxhat.sum(axis=0), (gxhat * xhat).sum(axis=0)]))
        gx = ((gxhat - sums[:c] / n - xhat * (sums[c:] / n)) * invstd).reshape(x.shape)
    gw = (g * xhat).sum(axis=0) if need_w else None
    gb = g.sum(axis=0) if need_b else None
    return gx, gw, gb


def sync_batch_norm_train(
    x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, stats: GlobalStats
) -> Tensor:
    """Normalise each channel (the last axis) of ``x`` with the statistics of every rank's rows,
    reported in ``stats``. Every rank must call it, in the same order.

    >>> import nnet
    >>> stats = GlobalStats()
    >>> y = sync_batch_norm_train(nnet.tensor([[1.0], [3.0]]), None, None, 0.0, stats)
    >>> y.reshape(-1).numpy(), stats.mean, stats.var, stats.count
    (array([-1.,  1.], dtype=float32), array([2.], dtype=float32), array([1.], dtype=float32), 2)
    """
    return SyncBatchNormKernel.apply(x, weight, bias, eps, stats)
