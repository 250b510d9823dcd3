"""Activation primitives: sigmoid, tanh and ReLU. Derivations: docs/derivations.md, "Elementwise"."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.pending import Pending, defer, deferring
from nnet.autograd.tensor import Tensor


class Sigmoid(Function):
    """d s(a) = g s (1 - s), from the saved output s (the seed's rule). See derivations.md#sigmoid."""

    elementwise = True

    saves_output = True

    def forward(ctx, a):
        # exp of a non-positive number never overflows: s = 1/(1+e^-a) for a >= 0, e^a/(1+e^a) below
        e = np.exp(-np.abs(a))
        return np.where(a >= 0, 1.0, e) / (1.0 + e)

    def vjp(ctx, grad):
        s = ctx.output
        return (grad * (s * (1.0 - s)),)

    def vjp_arrays(ctx, grad):
        s = ctx.output.data
        return (grad * (s * (1.0 - s)),)


class Tanh(Function):
    """d tanh(a) = g (1 - t^2), from the saved output t. See derivations.md#tanh."""

    elementwise = True

    saves_output = True

    def forward(ctx, a):
        return np.tanh(a)

    def vjp(ctx, grad):
        t = ctx.output
        return (grad * (1.0 - t * t),)

    def vjp_arrays(ctx, grad):
        t = ctx.output.data
        return (grad * (1.0 - t * t),)


#: Widest row of zeros ReLU compares against (elements); see :func:`_relu_array`.
_ZERO_ROW = 512


def _relu_array(a: np.ndarray) -> np.ndarray:
    """``np.maximum(a, 0)``, the same values (NaN and signed zeros included). Against a scalar 0,
    NumPy runs its slow broadcast loop (116 us on the seed network's (100, 28, 28, 4) activations);
    rows of contiguous ``a`` against a row of zeros take its vector loop (64 us)."""
    width = _ZERO_ROW
    while a.size % width:
        width //= 2
    if width < 64 or a.dtype.kind != "f" or a.size < 8 * width or not a.flags.c_contiguous:
        return np.maximum(a, 0)
    return np.maximum(a.reshape(-1, width), np.zeros(width, a.dtype)).reshape(a.shape)


class Relu(Function):
    """d relu(a) = g [a > 0]; relu'(0) = 0. See derivations.md#relu."""

    elementwise = True

    def forward(ctx, a):
        return _relu_array(a)

    def vjp(ctx, grad):
        return (grad * (ctx.inputs[0].data > 0),)

    vjp_arrays = vjp


# -- public functions ---------------------------------------------------------------------------
def sigmoid(a: Any) -> Tensor:
    """Elementwise 1 / (1 + e^-a), exact limits for large |a| and no overflow.

    >>> import nnet
    >>> nnet.sigmoid(nnet.tensor([-1e4, 0.0, 1e4])).numpy()
    array([0. , 0.5, 1. ], dtype=float32)
    """
    return Sigmoid.apply1(a)


def tanh(a: Any) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return Tanh.apply1(a)


def relu(a: Any) -> Tensor:
    """Elementwise max(a, 0); its derivative at 0 is taken as 0."""
    # a pending layer's output, or an image batch that a max-pool may follow: may fuse (pending.py)
    if (type(a) is Pending or (isinstance(a, Tensor) and a.ndim == 4)) and deferring():
        return defer("relu", a, (), a.shape, a.requires_grad)
    return Relu.apply1(a)
