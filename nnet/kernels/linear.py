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
from nnet.threads import blas_for


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
        with blas_for(x2.shape[0] * weight.data.size):  # each product's multiply-adds
            gx = (g2 @ weight.data.T).reshape(x.data.shape) if need_x else None
            gw = tall_product(x2, g2) if need_w else None
            gb = np.ones(g2.shape[0], g2.dtype) @ g2 if need_b else None
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight + bias`` over the last axis of ``x``, ``weight`` of shape (in, out).

    >>> import nnet
    >>> linear(nnet.ones((2, 3)), nnet.ones((3, 4)), nnet.ones(4)).numpy()
    array([[4., 4., 4., 4.],
           [4., 4., 4., 4.]], dtype=float32)
    """
    return Linear.apply(x, weight, bias)
