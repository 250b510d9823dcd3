"""2-D convolution as one primitive: im2col without a padded copy, one matmul, the bias added in place.

The VJP is written with nnet ops (matmul, sum, :class:`Col2ImPadded`), so ``create_graph=True``
differentiates it again; the patch matrix saved by the forward stands in for ``im2col(x)`` only when
nothing is being recorded. See derivations.md#conv2d-fused.
"""

from __future__ import annotations

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.fused.channels import per_channel
from nnet.autograd.fused.im2col import (
    COLUMN_MAJOR_BELOW,
    Col2ImPadded,
    Geometry,
    Im2Col,
    im2col_array,
)
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.linalg import tall_product
from nnet.autograd.tensor import Tensor


class Conv2d(Function):
    """y = P W + b, P = im2col(x) as (M, KH KW C_in), W the kernel as (KH KW C_in, C_out); VJP:
    (col2im(G W^T), P^T G, sum G). See derivations.md#conv2d-fused."""

    def forward(ctx, x, weight, bias, geo):
        patches = im2col_array(x, geo)
        m, taps, cin = patches.shape
        cols = patches.reshape(m, taps * cin)  # a view in both layouts
        y = cols @ weight.reshape(taps * cin, weight.shape[3])
        if bias is not None:
            per_channel(np.add, y, bias, out=y)
        ctx.save_for_backward(cols)
        oh, ow = geo[4]
        return y.reshape(x.shape[0], oh, ow, weight.shape[3])

    def vjp(ctx, grad):
        x, weight, _, geo = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        kh, kw, cin, cout = weight.shape
        g2 = grad.reshape(-1, cout)
        gx = gw = gb = None
        if need_w:
            # recording (create_graph): the patches as an op of x, so d(gw)/dx is part of the graph
            if grad_enabled.get():
                cols = Im2Col.apply(x, geo).reshape(-1, kh * kw * cin)
            else:
                cols = Tensor._make(ctx.saved[0], False, None)
            gw = tall_product(cols, g2).reshape(weight.shape)
        if need_b:
            gb = g2.sum(axis=0)
        if need_x:
            if cin < COLUMN_MAJOR_BELOW:
                # (W G^T): channel-major (T, C, M) memory, which col2im adds along whole rows
                w2 = weight.reshape(kh * kw * cin, cout)
                gcols = (w2 @ g2.swapaxes(0, 1)).reshape(kh * kw, cin, -1).permute(2, 0, 1)
            else:
                # one (M, C) block per tap, G W_t^T, so each of col2im's adds reads contiguous
                # memory (4.3 ms -> 1.8 ms for the wide CNN's (64, 14, 14, 32) input)
                taps = weight.reshape(kh * kw, cin, cout).swapaxes(1, 2)
                gcols = (g2 @ taps).swapaxes(0, 1)
            gx = Col2ImPadded.apply(gcols, x.data.shape, geo)
        return gx, gw, gb, None


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, geo: Geometry) -> Tensor:
    """The convolution of NHWC ``x`` with a (KH, KW, C_in, C_out) kernel for the geometry ``geo``
    (kernel, stride, dilation, (pad top, pad left), output size); the checks are the caller's.

    >>> import nnet
    >>> y = conv2d(nnet.ones((1, 3, 3, 1)), nnet.ones((3, 3, 1, 1)), None,
    ...            ((3, 3), (1, 1), (1, 1), (1, 1), (3, 3)))
    >>> y.reshape(3, 3).numpy()
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]], dtype=float32)
    """
    return Conv2d.apply(x, weight, bias, geo)


__all__ = ["Conv2d", "conv2d"]
