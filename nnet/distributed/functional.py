"""Differentiable collectives: the all-reduce that :class:`~nnet.distributed.SyncBatchNorm` is
composed of.

Every rank computes its own loss and the job minimises their sum (DDP then averages the parameter
gradients). If ``y = x_0 + ... + x_{N-1}`` on every rank, the sum of the losses depends on ``x_r``
through every rank's ``y``, so ``dL/dx_r = sum_k dL_k/dy_k``: the VJP of an all-reduce-sum is an
all-reduce-sum of the incoming gradients (docs/derivations.md, "All-reduce and SyncBatchNorm").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor
from nnet.distributed import comm


def _summed(a: np.ndarray) -> np.ndarray:
    out = np.array(a, copy=True, order="C")
    comm.all_reduce(out)
    return out


class AllReduceSum(Function):
    """``y = sum_r x_r`` on every rank; ``g_x = sum_r g_r``. See
    derivations.md#all-reduce-and-syncbatchnorm."""

    op_name = "all_reduce"

    def forward(ctx, x: np.ndarray) -> np.ndarray:
        return _summed(x)

    def vjp(ctx, grad: Tensor) -> tuple[Tensor]:
        return (all_reduce(grad),)

    def vjp_arrays(ctx, grad: np.ndarray) -> tuple[np.ndarray]:
        return (_summed(grad),)


def all_reduce(x: Any) -> Tensor:
    """The sum of ``x`` over all ranks, on every rank, recorded for autograd (the identity in a
    world of one). Every rank must call it, in the same order.

    >>> import nnet
    >>> from nnet.distributed.functional import all_reduce
    >>> x = nnet.tensor([1.0, 2.0], requires_grad=True)
    >>> all_reduce(x * 3).sum().backward()
    >>> x.grad
    Tensor([3., 3.], dtype=float32)
    """
    return AllReduceSum.apply(x if isinstance(x, Tensor) else Tensor(x))
