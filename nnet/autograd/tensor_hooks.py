"""Gradient hooks on tensors (``t.register_hook(fn)``), PyTorch's semantics.

``fn(grad)`` runs in every backward (and :func:`nnet.grad`) once the gradient with respect to ``t`` is
complete, before it goes on to the operations that made ``t`` (or, for a leaf, into ``.grad``). It may
return a Tensor to use instead, or ``None`` to keep the gradient. Hooks run in the order they were
registered, each on the previous one's result, in both walks of the engine: on the plain backward
they receive a Tensor wrapping the array, under ``create_graph`` the recorded gradient itself.

A tensor marks what the walk must do with its gradient in one slot, ``_retains_grad``: ``RETAIN``
(``retain_grad()``) and ``HOOKS`` as bits, so the walk tests one attribute per tensor as before and a
backward without hooks pays nothing more. The hooks themselves live here, by tensor id beside a weak
reference that drops them with the tensor (hook_table.py).
"""

from __future__ import annotations

from nnet.autograd.hook_table import Hook, HookTable, RemovableHandle
from nnet.autograd.tensor import HOOKS, Tensor


def _no_hooks_left(tensor: Tensor) -> None:
    tensor._retains_grad = tensor._retains_grad & ~HOOKS


_hooks = HookTable(on_empty=_no_hooks_left)


def register(tensor: Tensor, hook: Hook) -> RemovableHandle:
    """Add ``hook`` to ``tensor``'s gradient hooks; see :meth:`Tensor.register_hook`."""
    if not tensor.requires_grad:
        raise RuntimeError(
            f"register_hook: this tensor (shape {tensor.shape}) does not require gradients, so no "
            "gradient will ever reach the hook; create it with requires_grad=True"
        )
    if not callable(hook):
        raise TypeError(f"register_hook: {hook!r} is not callable")
    handle = _hooks.add(tensor, hook)
    tensor._retains_grad = tensor._retains_grad | HOOKS
    return handle


def run(tensor: Tensor, grad: Tensor) -> Tensor:
    """``grad`` passed through ``tensor``'s hooks in order (a copy of the list: a hook may remove
    itself); a hook's Tensor result replaces it, after a check of its shape."""
    for hook in _hooks.hooks(tensor):
        out = hook(grad)
        if out is None:
            continue
        if not isinstance(out, Tensor) or out.shape != tensor.shape:
            got = f"shape {out.shape}" if isinstance(out, Tensor) else type(out).__name__
            raise RuntimeError(
                f"register_hook: a hook on a tensor of shape {tensor.shape} returned {got}; return "
                "None to keep the gradient, or a Tensor of the tensor's shape to replace it"
            )
        if out.dtype != tensor.dtype:
            out = out.astype(tensor.dtype)
        grad = out
    return grad
