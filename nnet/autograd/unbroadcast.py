"""Undoing broadcasting: a gradient summed over the axes that broadcasting added or stretched, back
to its input's shape. The engine calls it right after each VJP (see docs/derivations.md,
"Broadcasting"); it is the one place where that sum happens.
"""

from __future__ import annotations

import numpy as np

from nnet.autograd.kernels import sum_axes
from nnet.autograd.tensor import Tensor


def _reduced_axes(gshape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of a gradient of shape ``gshape`` that broadcasting added or stretched from ``shape``."""
    lead = len(gshape) - len(shape)
    if lead < 0:
        raise RuntimeError(
            f"a VJP returned a gradient of shape {gshape} for an input of shape {shape}"
        )
    return tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and gshape[i + lead] != 1
    )


def _shape_error(gshape: tuple[int, ...], shape: tuple[int, ...]) -> RuntimeError:
    return RuntimeError(
        f"a VJP returned a gradient of shape {gshape} for an input of shape {shape}"
    )


def unbroadcast(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    The one place where broadcasting is undone (see docs/derivations.md, "Broadcasting"), here as
    recorded ops for ``create_graph``; :func:`unbroadcast_array` is the same over a plain array.
    """
    gshape = grad.data.shape
    if gshape == shape:
        return grad
    axes = _reduced_axes(gshape, shape)
    out = grad.sum(axis=axes, keepdims=True) if axes else grad
    lead = len(gshape) - len(shape)
    if out.data.shape[lead:] != shape:
        raise _shape_error(gshape, shape)
    return out.reshape(shape) if lead else out


def unbroadcast_array(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """:func:`unbroadcast` over a plain array, for a backward that records nothing."""
    axes = _reduced_axes(grad.shape, shape)
    out = sum_axes(grad, axes, True) if axes else grad
    lead = grad.ndim - len(shape)
    if out.shape[lead:] != shape:
        raise _shape_error(grad.shape, shape)
    return out.reshape(shape) if lead else out
