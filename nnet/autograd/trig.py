"""Trigonometric primitives: sin, cos, tan. Derivations: docs/derivations.md, "Trigonometric"."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor


class Sin(Function):
    """d sin(a) = g cos(a). See derivations.md#sin-cos."""

    elementwise = True

    def forward(ctx, a):
        return np.sin(a)

    def vjp(ctx, grad):
        return (grad * cos(ctx.inputs[0]),)

    def vjp_arrays(ctx, grad):
        return (grad * np.cos(ctx.inputs[0].data),)


class Cos(Function):
    """d cos(a) = -g sin(a). See derivations.md#sin-cos."""

    elementwise = True

    def forward(ctx, a):
        return np.cos(a)

    def vjp(ctx, grad):
        return (-grad * sin(ctx.inputs[0]),)

    def vjp_arrays(ctx, grad):
        return (-grad * np.sin(ctx.inputs[0].data),)


class Tan(Function):
    """d tan(a) = g (1 + t^2), from the saved output t. See derivations.md#tan."""

    elementwise = True

    saves_output = True

    def forward(ctx, a):
        return np.tan(a)

    def vjp(ctx, grad):
        t = ctx.output
        return (grad * (1.0 + t * t),)

    def vjp_arrays(ctx, grad):
        t = ctx.output.data
        return (grad * (1.0 + t * t),)


def sin(a: Any) -> Tensor:
    """Elementwise sine (radians).

    >>> import nnet
    >>> nnet.sin(nnet.tensor([0.0])).numpy()
    array([0.], dtype=float32)
    """
    return Sin.apply1(a)


def cos(a: Any) -> Tensor:
    """Elementwise cosine (radians).

    >>> import nnet
    >>> nnet.cos(nnet.tensor([0.0])).numpy()
    array([1.], dtype=float32)
    """
    return Cos.apply1(a)


def tan(a: Any) -> Tensor:
    """Elementwise tangent (radians); infinite derivative at the poles, as the function.

    >>> import nnet
    >>> nnet.tan(nnet.tensor([0.0])).numpy()
    array([0.], dtype=float32)
    """
    return Tan.apply1(a)
