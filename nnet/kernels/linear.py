"""The affine layer ``x W + b`` as one primitive.

The composition records a matmul and a broadcast add; its backward runs the matmul's two products,
passes the add's gradient through twice, and the engine sums the bias gradient over the rows with two
more ops. Here the forward adds the bias into the product in place, and the VJP is three NumPy
products when nothing is recorded. See derivations.md#linear-fused.
"""

from __future__ import annotations

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.linalg import tall_product
from nnet.autograd.tensor import Tensor
from nnet.kernels.channels import per_channel
from nnet.threads import blas_for, parallel_for

#: Each of the VJP's two products with at least this many multiply-adds runs on a thread of its own
#: when nnet has two or more (one BLAS thread each: OpenBLAS does not split products this small).
#: The seed's first linear, (100, 392) -> 196, 7.7M each, stays below: timed alone the split was
#: 250 -> 175 us (micro under ``chrt -f 10``), but inside the seed's step at two threads its VJP took
#: 369 us split and 328 on one thread (per-primitive medians, 4 alternating fresh-process pairs:
#: the worker starts ~75 us late and the next passes read its half from the other core); the MLP's
#: and the wide CNN's 25.7M products still split. Where the sides cross:
#: ``python -m benchmarks.crossovers linear_split``.
SPLIT_MACS = 2**23


class Linear(Function):
    """y = x W + b over the last axis of x, W of shape (in, out); VJP: (G W^T, X^T G, sum G) with X, G
    the rows of x and g. See derivations.md#linear-fused."""

    def forward(ctx, x, weight, bias):
        x2 = x.reshape(-1, weight.shape[0])
        with blas_for(x2.shape[0] * weight.size):
            y = x2 @ weight
        if bias is not None:
            per_channel(np.add, y, bias, out=y)
        return y.reshape(x.shape[:-1] + weight.shape[1:])

    def vjp(ctx, grad):
        # recorded (create_graph): the same products as nnet ops, differentiable again
        x, weight, _ = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad
        n_in, n_out = weight.shape
        g2 = grad.reshape(-1, n_out)
        gx = (g2 @ weight.swapaxes(0, 1)).reshape(x.shape) if need_x else None
        gw = tall_product(x.reshape(-1, n_in), g2) if need_w else None
        return gx, gw, g2.sum(axis=0) if need_b else None

    def vjp_arrays(ctx, grad):
        x, weight, _ = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad
        n_in, n_out = weight.data.shape
        g2 = grad.reshape(-1, n_out)
        x2 = x.data.reshape(-1, n_in)
        macs = x2.shape[0] * weight.data.size  # each product's multiply-adds

        def products(first: int, stop: int) -> list[np.ndarray | None]:
            """Products ``first:stop`` of (G W^T, X^T G, sum G), those needed."""
            todo = [
                lambda: (g2 @ weight.data.T).reshape(x.data.shape) if need_x else None,
                lambda: tall_product(x2, g2) if need_w else None,
                lambda: np.ones(g2.shape[0], g2.dtype) @ g2 if need_b else None,
            ]
            return [todo[i]() for i in range(first, stop)]

        if need_x and need_w and macs >= SPLIT_MACS:
            # G W^T on one thread, X^T G and sum G on another (parallel_for's two blocks of 0:3)
            gx, gw, gb = [g for part in parallel_for(products, 3) for g in part]
            return gx, gw, gb
        with blas_for(macs):
            gx, gw, gb = products(0, 3)
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight + bias`` over the last axis of ``x``, ``weight`` of shape (in, out).

    >>> import nnet
    >>> linear(nnet.ones((2, 3)), nnet.ones((3, 4)), nnet.ones(4)).numpy()
    array([[4., 4., 4., 4.],
           [4., 4., 4., 4.]], dtype=float32)
    """
    return Linear.apply(x, weight, bias)
