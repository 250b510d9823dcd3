"""Gradient clipping, in place on the parameters' ``.grad`` arrays (after backward, before step)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nnet.autograd.tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[np.ndarray]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad.data for p in params if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is taken over all gradients as if concatenated into one vector; they are multiplied
    by ``min(1, max_norm / (norm + 1e-6))``, as PyTorch does. Returns the norm before clipping.

    >>> import nnet
    >>> w = nnet.tensor([1.0, 1.0], requires_grad=True)
    >>> (w * nnet.tensor([3.0, 4.0])).sum().backward()
    >>> nnet.nn.utils.clip_grad_norm_([w], max_norm=1.0)
    Tensor(5., dtype=float32)
    >>> w.grad.data.round(4)
    array([0.6, 0.8], dtype=float32)
    """
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.zeros((), np.float32))
    norm_type = float(norm_type)
    if norm_type == np.inf:
        norms = [np.abs(g).max(initial=0) for g in grads]
        total = np.max(norms)
    else:
        norms = [np.linalg.norm(g.reshape(-1), norm_type) for g in grads]
        total = np.linalg.norm(np.asarray(norms), norm_type)
    total = np.asarray(total, dtype=grads[0].dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, so "
            "they cannot be clipped; pass error_if_nonfinite=False to clip anyway (the result "
            "will hold NaNs), or find the step whose loss diverged (a lower learning rate helps)"
        )
    coef = min(float(max_norm) / (float(total) + 1e-6), 1.0)
    if coef < 1.0 or not np.isfinite(coef):
        for g in grads:
            g *= coef
    return Tensor(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient element into ``[-clip_value, clip_value]``, in place.

    >>> import nnet
    >>> w = nnet.tensor([1.0, 1.0], requires_grad=True)
    >>> (w * nnet.tensor([-3.0, 0.5])).sum().backward()
    >>> nnet.nn.utils.clip_grad_value_(w, 1.0)
    >>> w.grad
    Tensor([-1. ,  0.5], dtype=float32)
    """
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value!r}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
