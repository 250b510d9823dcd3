"""PyTorch's spelling of a custom Function, on nnet's: ``@staticmethod forward(ctx, *tensors)`` and
``@staticmethod backward(ctx, *grads)``, ``ctx.save_for_backward`` / ``ctx.saved_tensors``,
``ctx.needs_input_grad`` and ``ctx.mark_non_differentiable``.

A subclass that defines ``backward`` (and no ``vjp``) is adapted when it is defined: its forward runs
on tensors with recording off and may use any nnet op; its backward becomes the VJP, and runs on the
original input tensors when they were saved, so ``create_graph=True`` differentiates it again.
Differences from PyTorch: one output per Function, and ``needs_input_grad`` is set only after
forward (during backward, where PyTorch's code reads it).

>>> import nnet
>>> class Square(nnet.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x * x
...     @staticmethod
...     def backward(ctx, grad):
...         (x,) = ctx.saved_tensors
...         return 2 * x * grad
>>> x = nnet.tensor([3.0], requires_grad=True)
>>> Square.apply(x).backward(nnet.ones(1))
>>> x.grad.tolist()
[6.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.grad_mode import no_grad
from nnet.autograd.tensor import Tensor


def _plain(f: Any) -> Any:
    return f.__func__ if isinstance(f, staticmethod) else f


def adapt(cls: type) -> None:
    """Give ``cls`` (PyTorch-style) nnet's ``forward`` over arrays and ``vjp``."""
    user_forward, user_backward = _plain(cls.__dict__["forward"]), _plain(cls.__dict__["backward"])
    name = cls.__name__

    def forward(ctx: Any, *args: Any, **params: Any) -> np.ndarray:
        wrapped = [Tensor._make(a, False, None) if isinstance(a, np.ndarray) else a for a in args]
        ctx._arg_ids = {id(w): i for i, w in enumerate(wrapped) if isinstance(w, Tensor)}
        with no_grad():
            out = user_forward(ctx, *wrapped, **params)
        if isinstance(out, (tuple, list)):
            raise TypeError(
                f"{name}.forward: returned {len(out)} outputs; an nnet Function has one output "
                "(split it into one Function per output)"
            )
        return out.data if isinstance(out, Tensor) else np.asarray(out)

    def vjp(ctx: Any, grad: Tensor) -> Any:
        return user_backward(ctx, grad)

    cls.forward = forward  # type: ignore[attr-defined]
    cls.vjp = vjp  # type: ignore[attr-defined]


def saved_tensors(ctx: Any) -> tuple[Any, ...]:
    """What ``save_for_backward`` kept, inputs given back as the original (graph) tensors."""
    ids = getattr(ctx, "_arg_ids", {})
    inputs = ctx.inputs
    return tuple(
        inputs[ids[id(v)]] if inputs is not None and id(v) in ids else v for v in ctx.saved
    )
