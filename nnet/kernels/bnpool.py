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

from collections.abc import Callable
from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor
from nnet.kernels.batchnorm import BatchStats, recorded_vjp
from nnet.kernels.channels import column_sums, per_channel, plane_sums, relu
from nnet.kernels.pool import (
    MaxPool2dBackward,
    first_max,
    running_max,
    window_offsets,
    window_slice,
)
from nnet.threads import items_per_block, parallel_for

#: Narrower pixels (C values) take the three fused ops instead, whose pool moves whole pixels into
#: offset-major order. Where the two cross: ``python -m benchmarks.crossovers pixel_bytes``.
MIN_PIXEL_BYTES = 64


def window_planes(a: np.ndarray, kernel: tuple[int, int]) -> list[Any]:
    """The strided (N, OH, OW, C) view of NHWC ``a`` for each window offset, row-major."""
    out_hw = (a.shape[1] // kernel[0], a.shape[2] // kernel[1])
    return [window_slice(a, i, j, kernel, out_hw) for i, j in window_offsets(kernel)]


def block_sum(parts: list[np.ndarray]) -> np.ndarray:
    """Per-block partial sums (:func:`nnet.threads.parallel_for`'s results) added in block order."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _images_per_block(planes: np.ndarray) -> int:
    """``min_block`` for the passes over the offset-major (KH KW, N, ..., C) ``planes``."""
    return items_per_block(planes.nbytes // max(1, planes.shape[1]))


def _rows(a: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Images ``start:stop`` of an offset-major (KH KW, N, ..., C) array as (KH KW, rows, C): one
    contiguous plane per offset."""
    return a[:, start:stop].reshape(a.shape[0], -1, a.shape[-1])


def normalise_and_pool(
    centred: np.ndarray,
    ones: np.ndarray,
    weight: Any,
    bias: Any,
    eps: float,
    centre: Callable[[int, int], None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(relu(max over offsets of y), y, the maxima, 1 / sqrt(var + eps), var) for the offset-major
    (KH KW, N, OH, OW, C) ``centred``, which ``centre(start, stop)`` fills for those images, and
    y = centred (w invstd) + b: batch norm, pool and ReLU after centring. Two blocks of images per
    thread: the centring, squares and their partial sums, then the rest (``ones``: at least N OH OW).
    """
    c = centred.shape[-1]
    m = centred.size // c
    y = np.empty_like(centred)  # the squares, then the normalised output in the same buffer

    def squares(start: int, stop: int) -> np.ndarray:
        centre(start, stop)
        part, sq = _rows(centred, start, stop), _rows(y, start, stop)
        return plane_sums(np.multiply(part, part, out=sq), ones)

    min_block = _images_per_block(centred)
    var = block_sum(parallel_for(squares, centred.shape[1], min_block=min_block)) / m
    invstd = 1.0 / np.sqrt(var + eps)
    scale = invstd if weight is None else weight * invstd
    pooled = np.empty(centred.shape[1:], y.dtype)
    out = np.empty_like(pooled)

    def normalise(start: int, stop: int) -> None:
        part = _rows(y, start, stop)
        per_channel(np.multiply, _rows(centred, start, stop), scale, out=part)
        if bias is not None:
            per_channel(np.add, part, bias, out=part)
        running_max(pooled[start:stop], y[:, start:stop])
        relu(pooled[start:stop], out=out[start:stop])

    parallel_for(normalise, centred.shape[1], min_block=min_block)
    return out, y, pooled, invstd, var


def routed_backward(
    grad: np.ndarray,
    saved: tuple,
    weight: Any,
    then: Callable[[int, int, np.ndarray, np.ndarray], Any] | None,
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """(g_weight, g_bias, ``then``'s results) from the output gradient and
    :func:`normalise_and_pool`'s (centred, y, pooled, invstd, ones), two blocks of images per
    thread: the routing and the partial sums, then (unless ``then`` is None) the input gradient
    t * scale per channel, t offset-major: ``then(start, stop, t, scale)`` multiplies images
    ``start:stop`` of t by ``scale`` and writes or uses them where it wants, in the same block,
    while they are still in cache."""
    centred, y, pooled, invstd, ones = saved
    taps, n, c = y.shape[0], y.shape[1], y.shape[-1]
    m = y.size // c
    gpool = grad.reshape(pooled.shape)
    gy = np.empty(y.shape, grad.dtype)
    t = np.empty(y.shape, np.result_type(grad, centred))

    def route(start: int, stop: int) -> np.ndarray:
        r = slice(start, stop)
        gp = gpool[r] * (pooled[r] > 0)  # relu'(0) = 0; NaN > 0 is False, as relu's
        for k, hit in first_max(list(y[:, r]), pooled[r], taps - 1):
            np.multiply(gp, hit, out=gy[k, r])
        g = _rows(gy, start, stop)
        prod = np.multiply(g, _rows(centred, start, stop), out=_rows(t, start, stop))
        return np.stack([plane_sums(g, ones), plane_sums(prod, ones)])

    min_block = _images_per_block(y)
    gb, gw = block_sum(parallel_for(route, n, min_block=min_block))
    gw = gw * invstd  # sum g xhat, xhat = centred invstd
    scale = invstd if weight is None else weight * invstd
    if then is None:
        return gw, gb, []
    k_centred, k_mean = -gw * invstd / m, gb / m

    def input_grad(start: int, stop: int) -> Any:
        # dx = k (g - gb/m - xhat gw/m), k = w invstd: t without its last factor k
        part = _rows(t, start, stop)
        per_channel(np.multiply, _rows(centred, start, stop), k_centred, out=part)
        part += _rows(gy, start, stop)
        per_channel(np.subtract, part, k_mean, out=part)
        return then(start, stop, t, scale)

    return gw, gb, parallel_for(input_grad, n, min_block=min_block)


def recorded_routing(grad: Tensor, y: np.ndarray, pooled: np.ndarray, shape: tuple[int, ...],
                     kernel: tuple[int, int], mask: bool = True) -> Tensor:  # fmt: skip
    """G_y as nnet ops of ``grad``: the ReLU's mask (``pooled > 0``, unless ``mask`` is False) and
    the pool's routing to each window's first maximum of the offset-major ``y`` (``pooled`` its
    maxima; constants where they are differentiable), NHWC of ``shape``."""
    y_nhwc = np.empty(shape, y.dtype)
    for plane, part in zip(window_planes(y_nhwc, kernel), y, strict=True):
        plane[...] = part.reshape(plane.shape)
    out = pooled.reshape(grad.shape)
    gp = grad * Tensor._make((out > 0).astype(grad.dtype), False, None) if mask else grad
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

        def sums(start: int, stop: int) -> np.ndarray:
            return column_sums(x[start:stop].reshape(-1, c), ones[: (stop - start) * h * w])

        mean = block_sum(parallel_for(sums, n, min_block=items_per_block(x[:1].nbytes))) / m
        # centred, offset-major: the one pass that reads x through strided slices
        centred = np.empty((kh * kw, n, h // kh, w // kw, c), x.dtype)
        planes = window_planes(x, kernel)

        def centre(start: int, stop: int) -> None:
            for k, plane in enumerate(planes):
                np.subtract(plane[start:stop], mean, out=centred[k, start:stop])

        out, y, pooled, invstd, var = normalise_and_pool(centred, ones, weight, bias, eps, centre)
        ctx.save_for_backward(centred, y, pooled, invstd, ones)
        stats.mean, stats.var = mean, var
        return out

    def vjp_arrays(ctx, grad):
        x, weight, _, _, _, kernel = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = np.empty(x.data.shape, grad.dtype) if need_x else None
        planes = None if gx is None else window_planes(gx, kernel)

        def write(start: int, stop: int, t: np.ndarray, scale: np.ndarray) -> None:
            for plane, part in zip(planes, t, strict=True):  # type: ignore[arg-type]
                np.multiply(part[start:stop], scale, out=plane[start:stop])

        w = None if weight is None else weight.data
        gw, gb, _ = routed_backward(grad, ctx.saved, w, write if need_x else None)
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
