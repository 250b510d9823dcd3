"""Softmax cross-entropy of logits against constant target rows, as one primitive.

The composition (log-softmax, a product with the one-hot rows, two sums, a negation and a division)
records six ops whose VJPs the engine runs one by one; on a classifier's (N, C) logits each costs
more in Python than in arithmetic. Here the forward is one stable log-softmax and one contraction,
and the VJP is ``(softmax(x) sum(q) - q) g / divisor``. See derivations.md#softmax-cross-entropy-fused.
"""

from __future__ import annotations

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.reduction import softmax, stable_shift
from nnet.autograd.tensor import Tensor


class SoftmaxCrossEntropy(Function):
    """L = -sum_rows q . log_softmax(x) / divisor for constant rows q; VJP: (softmax(x) sum(q) - q)
    g / divisor, row by row. See derivations.md#softmax-cross-entropy-fused."""

    def forward(ctx, x, q, divisor):
        shifted = x - stable_shift(x, (x.ndim - 1,))
        e = np.exp(shifted)
        total = np.add.reduce(e, axis=-1, keepdims=True)
        logp = shifted - np.log(total)
        e /= total  # the softmax, for the VJP
        ctx.save_for_backward(e)
        # the composition's order: each row's sum, then the rows, then the division
        rows = np.add.reduce(logp * q, axis=-1)
        return np.asarray(-np.add.reduce(rows, axis=None) / np.asarray(divisor, x.dtype))

    def vjp(ctx, grad):
        # recorded (create_graph): the softmax as an op of x, differentiable again
        x, q, divisor = ctx.inputs
        qsum = np.add.reduce(q, axis=-1, keepdims=True)
        return (softmax(x, axis=-1) * qsum - q) * (grad / divisor), None, None

    def vjp_arrays(ctx, grad):
        _, q, divisor = ctx.inputs
        p = ctx.saved[0]  # the forward's softmax
        scale = grad / np.asarray(divisor, p.dtype)
        return (p * np.add.reduce(q, axis=-1, keepdims=True) - q) * scale, None, None


def softmax_cross_entropy(x: Tensor, q: np.ndarray, divisor: float) -> Tensor:
    """``-sum(q * log_softmax(x, axis=-1)) / divisor`` for logits ``x`` (classes on the last axis)
    and constant target rows ``q`` of the same shape.

    >>> import nnet
    >>> loss = softmax_cross_entropy(nnet.tensor([[2.0, 0.0, -1.0]]), np.eye(3, dtype="f4")[:1], 1.0)
    >>> round(loss.item(), 4)
    0.1698
    """
    return SoftmaxCrossEntropy.apply(x, q, divisor)
