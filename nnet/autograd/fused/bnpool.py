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
from nnet.autograd.fused.batchnorm import BatchStats, _recorded_vjp
from nnet.autograd.fused.channels import per_channel
from nnet.autograd.fused.pool import MaxPool2dBackward, _first_max, _offsets, _running_max, _slice
from nnet.autograd.tensor import Tensor

#: Narrower pixels (C values) take the three fused ops instead, whose pool moves whole pixels into
#: offset-major order: forward + backward, float32 (ms, three ops -> this one): (100, 28, 28, 4)
#: 1.47 -> 2.74; (100, 14, 14, 8) 0.91 -> 0.96; (8, 8, 8, 16) 0.16 -> 0.14; (64, 28, 28, 32)
#: 10.4 -> 9.5; (64, 14, 14, 64) 3.79 -> 3.72 (in the wide CNN's step 28.3 -> 27.7 ms).
MIN_PIXEL_BYTES = 64


def _planes(a: np.ndarray, kernel: tuple[int, int]) -> list[Any]:
    """The strided (N, OH, OW, C) view of NHWC ``a`` for each window offset, row-major."""
    out_hw = (a.shape[1] // kernel[0], a.shape[2] // kernel[1])
    return [_slice(a, i, j, kernel, out_hw) for i, j in _offsets(kernel)]


class BatchNormReluPool(Function):
    """z = maxpool(relu(bn(x))) = relu(maxpool(y)), y = xhat w + b the training-mode batch norm of x
    (windows of ``kernel`` tiling x exactly); VJP: g [z > 0] to each window's first maximum of y,
    then batch norm's VJP. See derivations.md#batch-norm-relu-and-max-pooling-fused."""

    def forward(ctx, x, weight, bias, eps, stats, kernel):
        n, h, w, c = x.shape
        kh, kw = kernel
        taps = kh * kw
        m = n * h * w
        ones = np.ones(m, x.dtype)
        mean = ones @ x.reshape(m, c) / m
        # centred, offset-major: the one pass that reads x through strided slices
        centred = np.empty((taps, n, h // kh, w // kw, c), x.dtype)
        for k, plane in enumerate(_planes(x, kernel)):
            np.subtract(plane, mean, out=centred[k])
        rows = centred.reshape(m, c)
        y = np.multiply(rows, rows)  # the squares, then the normalised output in the same buffer
        var = ones @ y / m
        invstd = 1.0 / np.sqrt(var + eps)
        per_channel(np.multiply, rows, invstd if weight is None else weight * invstd, out=y)
        if bias is not None:
            per_channel(np.add, y, bias, out=y)
        y = y.reshape(centred.shape)
        pooled = np.empty(centred.shape[1:], x.dtype)
        _running_max(pooled, y)
        ctx.save_for_backward(centred, y, pooled, invstd, ones)
        stats.mean, stats.var = mean, var
        return np.maximum(pooled, 0)

    def vjp_arrays(ctx, grad):
        x, weight, _, _, _, kernel = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        centred, y, pooled, invstd, ones = ctx.saved
        taps, c = y.shape[0], y.shape[-1]
        gp = grad * (pooled > 0)  # relu'(0) = 0, and NaN > 0 is False: no gradient, as relu's
        gy = np.empty(y.shape, grad.dtype)
        for k, hit in _first_max(list(y), pooled, taps - 1):
            np.multiply(gp, hit, out=gy[k])
        g = gy.reshape(-1, c)
        rows = centred.reshape(-1, c)
        m = g.shape[0]
        gb = ones @ g
        t = g * rows
        gw = (ones @ t) * invstd  # sum g xhat, xhat = centred invstd
        gx = None
        if need_x:
            # dx = k (g - gb/m - xhat gw/m), k = w invstd, in t, then each plane to its NHWC slice
            scale = invstd if weight is None else weight.data * invstd
            per_channel(np.multiply, rows, -gw * invstd / m, out=t)
            t += g
            per_channel(np.subtract, t, gb / m, out=t)
            gx = np.empty(x.data.shape, grad.dtype)
            for plane, part in zip(_planes(gx, kernel), t.reshape(y.shape), strict=True):
                np.multiply(part, scale, out=plane)
        return gx, gw if need_w else None, gb if need_b else None, None, None, None

    def vjp(ctx, grad):
        # recorded (create_graph): the ReLU's mask and the pool's routing are constants (piecewise),
        # the routing is MaxPool2dBackward (linear in its gradient), then batch norm's VJP as nnet
        # ops of x, differentiable again
        x, weight, _, eps, _, kernel = ctx.inputs
        _, y, pooled, _, _ = ctx.saved
        y_nhwc = np.empty(x.data.shape, y.dtype)
        for plane, part in zip(_planes(y_nhwc, kernel), y, strict=True):
            plane[...] = part
        gp = grad * Tensor._make((pooled > 0).astype(grad.dtype), False, None)
        gy = MaxPool2dBackward.apply(gp, y_nhwc, pooled, kernel)
        return (*_recorded_vjp(ctx, gy, x, weight, eps), None, None, None)


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
