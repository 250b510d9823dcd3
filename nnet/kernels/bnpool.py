"""Training-mode batch norm, ReLU and max-pooling (kernel = stride) as one primitive.

The three layers in a row (as in ``conv-bn-relu-pool`` blocks) make three ops, each with its own
passes over the full-size activation: the ReLU alone reads and writes it twice (forward and
backward), and the pool reads it through strided slices whose contiguous runs are one pixel's C
values. Here the ReLU runs after the pool, on a quarter of the values (max and ReLU commute, with the
same gradient, ties included), and the centred input is written window-offset-major,
(KH KW, N, OH, OW, C), by the pass that centres it: every later pass (variance, scale and shift, the
maxima, the first-maximum masks and the whole batch-norm backward) runs over contiguous planes, and
only the last pass of the backward writes back to NHWC.
See derivations.md#batch-norm-relu-and-max-pooling-fused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor
from nnet.kernels.batchnorm import BatchStats, recorded_vjp
from nnet.kernels.channels import column_sums, per_channel
from nnet.kernels.pool import (
    MaxPool2dBackward,
    first_max,
    running_max,
    window_offsets,
    window_slice,
)

#: Narrower pixels (C values) take the three fused ops instead, whose pool moves whole pixels into
#: offset-major order. Where the two cross: ``python -m benchmarks.crossovers pixel_bytes``.
MIN_PIXEL_BYTES = 64


def _planes(a: np.ndarray, kernel: tuple[int, int]) -> list[Any]:
    """The strided (N, OH, OW, C) view of NHWC ``a`` for each window offset, row-major."""
    out_hw = (a.shape[1] // kernel[0], a.shape[2] // kernel[1])
    return [window_slice(a, i, j, kernel, out_hw) for i, j in window_offsets(kernel)]


def normalise_and_pool(
    centred: np.ndarray, ones: np.ndarray, weight: Any, bias: Any, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(relu(max over offsets of y), y, the maxima, 1 / sqrt(var + eps), var) for the centred input
    (KH KW, N, OH, OW, C), y = centred (w invstd) + b: batch norm, pool and ReLU after centring."""
    c = centred.shape[-1]
    rows = centred.reshape(-1, c)
    m = rows.shape[0]
    y = np.multiply(rows, rows)  # the squares, then the normalised output in the same buffer
    var = column_sums(y, ones) / m
    invstd = 1.0 / np.sqrt(var + eps)
    per_channel(np.multiply, rows, invstd if weight is None else weight * invstd, out=y)
    if bias is not None:
        per_channel(np.add, y, bias, out=y)
    y = y.reshape(centred.shape)
    pooled = np.empty(centred.shape[1:], y.dtype)
    running_max(pooled, y)
    return np.maximum(pooled, 0), y, pooled, invstd, var


def routed_backward(
    grad: np.ndarray, saved: tuple, weight: Any, need_x: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """(t, scale, g_weight, g_bias) from the output gradient and :func:`normalise_and_pool`'s
    (centred, y, pooled, invstd, ones): the input gradient is t * scale per channel, t offset-major
    (None unless ``need_x``), so that the caller writes the last pass where it wants it."""
    centred, y, pooled, invstd, ones = saved
    taps, c = y.shape[0], y.shape[-1]
    gp = grad.reshape(pooled.shape) * (pooled > 0)  # relu'(0) = 0; NaN > 0 is False, as relu's
    gy = np.empty(y.shape, grad.dtype)
    for k, hit in first_max(list(y), pooled, taps - 1):
        np.multiply(gp, hit, out=gy[k])
    g = gy.reshape(-1, c)
    rows = centred.reshape(-1, c)
    m = g.shape[0]
    gb = column_sums(g, ones)
    t = g * rows
    gw = column_sums(t, ones) * invstd  # sum g xhat, xhat = centred invstd
    scale = invstd if weight is None else weight * invstd
    if not need_x:
        return None, scale, gw, gb
    # dx = k (g - gb/m - xhat gw/m), k = w invstd: t without its last factor k
    per_channel(np.multiply, rows, -gw * invstd / m, out=t)
    t += g
    per_channel(np.subtract, t, gb / m, out=t)
    return t.reshape(y.shape), scale, gw, gb


def recorded_routing(grad: Tensor, y: np.ndarray, pooled: np.ndarray, shape: tuple[int, ...],
                     kernel: tuple[int, int]) -> Tensor:  # fmt: skip
    """G_y as nnet ops of ``grad``: the ReLU's mask and the pool's routing to each window's first
    maximum of the offset-major ``y`` (constants where they are differentiable), NHWC of ``shape``."""
    y_nhwc = np.empty(shape, y.dtype)
    for plane, part in zip(_planes(y_nhwc, kernel), y, strict=True):
        plane[...] = part.reshape(plane.shape)
    out = pooled.reshape(grad.shape)
    gp = grad * Tensor._make((out > 0).astype(grad.dtype), False, None)
    return MaxPool2dBackward.apply(gp, y_nhwc, out, kernel)


class BatchNormReluPool(Function):
    """z = maxpool(relu(bn(x))) = relu(maxpool(y)), y = xhat w + b the training-mode batch norm of x
    (windows of ``kernel`` tiling x exactly); VJP: g [z > 0] to each window's first maximum of y,
    then batch norm's VJP. See derivations.md#batch-norm-relu-and-max-pooling-fused."""

    def forward(ctx, x, weight, bias, eps, stats, kernel):
        n, h, w, c = x.shape
        kh, kw = kernel
        m = n * h * w
        ones = np.ones(m, x.dtype)
        mean = column_sums(x.reshape(m, c), ones) / m
        # centred, offset-major: the one pass that reads x through strided slices
        centred = np.empty((kh * kw, n, h // kh, w // kw, c), x.dtype)
        for k, plane in enumerate(_planes(x, kernel)):
            np.subtract(plane, mean, out=centred[k])
        out, y, pooled, invstd, var = normalise_and_pool(centred, ones, weight, bias, eps)
        ctx.save_for_backward(centred, y, pooled, invstd, ones)
        stats.mean, stats.var = mean, var
        return out

    def vjp_arrays(ctx, grad):
        x, weight, _, _, _, kernel = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        w = None if weight is None else weight.data
        t, scale, gw, gb = routed_backward(grad, ctx.saved, w, need_x)
        gx = None
        if t is not None:
            gx = np.empty(x.data.shape, grad.dtype)
            for plane, part in zip(_planes(gx, kernel), t, strict=True):
                np.multiply(part, scale, out=plane)
        return gx, gw if need_w else None, gb if need_b else None, None, None, None

    def vjp(ctx, grad):
        # recorded (create_graph): the routing (MaxPool2dBackward, linear in its gradient), then
        # batch norm's VJP as nnet ops of x, differentiable again
        x, weight, _, eps, _, kernel = ctx.inputs
        _, y, pooled, _, _ = ctx.saved
        gy = recorded_routing(grad, y, pooled, x.data.shape, kernel)
        return (*recorded_vjp(ctx.needs_input_grad[:3], gy, x, weight, eps), None, None, None)


def batch_norm_relu_pool(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    stats: BatchStats,
    kernel: tuple[int, int],
) -> Tensor:
    """``max_pool2d(relu(batch_norm(x)), kernel)`` in training mode, the batch statistics reported in
    ``stats``; the caller checks that the windows tile ``x``'s height and width exactly.

    >>> import nnet
    >>> stats = BatchStats()
    >>> x = nnet.tensor([[1.0, 2.0], [3.0, 6.0]]).reshape(1, 2, 2, 1)
    >>> batch_norm_relu_pool(x, None, None, 0.0, stats, (2, 2)).reshape(-1).numpy()
    array([1.6035674], dtype=float32)
    """
    return BatchNormReluPool.apply(x, weight, bias, eps, stats, kernel)
