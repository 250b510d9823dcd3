"""Max-pooling over non-overlapping windows (kernel == stride, no padding, no dilation), fused.

The composition (``sliding_windows(x).max(axis=(3, 4))``) builds a boolean mask the size of the
windows in its backward, multiplies the broadcast gradient by it and adds the windows back with
col2im: three passes over the input. Here the forward is a running maximum over the KH KW strided
slices (one per window offset), and the backward writes ``g`` straight into each slice of the input
gradient where that slice holds the first maximum of its window. See derivations.md#max-pooling-fused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor
from nnet.autograd.window import sliding_windows


def _offsets(kernel: tuple[int, int]) -> list[tuple[int, int]]:
    """Window offsets in row-major order: the order in which ties are broken."""
    return [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]


def _slice(a: np.ndarray, i: int, j: int, kernel: tuple[int, int], out_hw: tuple[int, int]) -> Any:
    """The element at offset (i, j) of every window: a strided (N, OH, OW, C) view of ``a``."""
    (kh, kw), (oh, ow) = kernel, out_hw
    return a[:, i : oh * kh : kh, j : ow * kw : kw]


def _first_max(
    x: np.ndarray, out: np.ndarray, kernel: tuple[int, int]
) -> Iterator[tuple[Any, np.ndarray]]:
    """For each offset in row-major order: (its slice index, where it holds its window's first max)."""
    hw = (out.shape[1], out.shape[2])
    found: np.ndarray | None = None
    last = kernel[0] * kernel[1] - 1
    for k, (i, j) in enumerate(_offsets(kernel)):
        hit = np.equal(_slice(x, i, j, kernel, hw), out)
        if found is None:
            found = hit.copy() if last else hit
        else:
            np.greater(hit, found, out=hit)  # hit and not found: a bool > is "and not"
            if k < last:
                found |= hit
        yield (i, j), hit


class MaxPool2d(Function):
    """max-pool with kernel == stride: y = max over each window's KH KW elements; VJP: g to the first
    maximal element of each window (row-major), as the composition. See derivations.md#max-pooling-fused."""

    saves_output = True

    def forward(ctx, x, kernel):
        hw = (x.shape[1] // kernel[0], x.shape[2] // kernel[1])
        slices = [_slice(x, i, j, kernel, hw) for i, j in _offsets(kernel)]
        out = slices[0].copy()
        for s in slices[1:]:
            np.maximum(out, s, out=out)
        return out

    def vjp(ctx, grad):
        x, kernel = ctx.inputs
        return MaxPool2dBackward.apply(grad, x.data, ctx.output.data, kernel), None


class MaxPool2dBackward(Function):
    """dx = g routed to each window's first maximum (linear in g, piecewise constant in x); its VJP
    gathers gg from those same positions. See derivations.md#max-pooling-fused."""

    def forward(ctx, grad, x, out, kernel):
        (kh, kw), (oh, ow) = kernel, out.shape[1:3]
        # every element is written below unless the windows leave a remainder uncovered
        covered = x.shape[1] == oh * kh and x.shape[2] == ow * kw
        dx = np.empty(x.shape, grad.dtype) if covered else np.zeros(x.shape, grad.dtype)
        for (i, j), hit in _first_max(x, out, kernel):
            np.multiply(grad, hit, out=_slice(dx, i, j, kernel, (oh, ow)))
        return dx

    def vjp(ctx, gg):
        _, x, out, kernel = ctx.inputs
        n, oh, ow, c = out.shape
        hits = [hit for _, hit in _first_max(x, out, kernel)]
        mask = np.stack(hits, axis=3).reshape(n, oh, ow, kernel[0], kernel[1], c).astype(out.dtype)
        return (sliding_windows(gg, kernel, kernel) * mask).sum(axis=(3, 4)), None, None, None


def max_pool2d(x: Tensor, kernel: tuple[int, int]) -> Tensor:
    """Max-pooling of an NHWC tensor over non-overlapping ``kernel`` windows (stride = kernel, no
    padding); a remainder that does not fill a window is dropped, as in PyTorch.

    >>> import nnet
    >>> x = nnet.tensor([[1.0, 3.0, 0.0], [2.0, 3.0, 9.0]]).reshape(1, 2, 3, 1)
    >>> max_pool2d(x, (2, 2)).reshape(-1).numpy()
    array([3.], dtype=float32)
    """
    return MaxPool2d.apply(x, kernel)
