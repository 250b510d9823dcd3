"""Gradient hooks on tensors (``t.register_hook(fn)``), PyTorch's semantics.

``fn(grad)`` runs in every backward (and :func:`nnet.grad`) once the gradient with respect to ``t`` is
complete, before it goes on to the operations that made ``t`` (or, for a leaf, into ``.grad``). It may
return a Tensor to use instead, or ``None`` to keep the gradient. Hooks run in the order they were
registered, each on the previous one's result, in both walks of the engine: on the plain backward
they receive a Tensor wrapping the array, under ``create_graph`` the recorded gradient itself.

A tensor marks what the walk must do with its gradient in one slot, ``_retains_grad``: ``RETAIN``
(``retain_grad()``) and ``HOOKS`` as bits, so the walk tests one attribute per tensor as before and a
backward without hooks pays nothing more. The hooks themselves live here, by tensor id beside a weak
reference that drops them with the tensor (tensor ``==`` is elementwise, so tensors are not dict keys).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from nnet.autograd.tensor import HOOKS, Tensor

Hook = Callable[[Tensor], Any]

_hooks: dict[int, tuple[weakref.ref[Tensor], dict[int, Hook]]] = {}
_next_key = iter(range(1 << 62)).__next__


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook away again."""

    def __init__(self, tensor: Tensor, key: int) -> None:
        self._tensor = weakref.ref(tensor)
        self._key = key

    def remove(self) -> None:
        t = self._tensor()
        entry = _hooks.get(id(t)) if t is not None else None
        if t is None or entry is None:
            return
        entry[1].pop(self._key, None)
        if not entry[1]:
            del _hooks[id(t)]
            t._retains_grad = t._retains_grad & ~HOOKS


def register(tensor: Tensor, hook: Hook) -> RemovableHandle:
    """Add ``hook`` to ``tensor``'s gradient hooks; see :meth:`Tensor.register_hook`."""
    if not tensor.requires_grad:
        raise RuntimeError(
            f"register_hook: this tensor (shape {tensor.shape}) does not require gradients, so no "
            "gradient will ever reach the hook; create it with requires_grad=True"
        )
    if not callable(hook):
        raise TypeError(f"register_hook: {hook!r} is not callable")
    k = id(tensor)
    if k not in _hooks:
        _hooks[k] = (weakref.ref(tensor, _forget(k)), {})
    key = _next_key()
    _hooks[k][1][key] = hook
    tensor._retains_grad = tensor._retains_grad | HOOKS
    return RemovableHandle(tensor, key)


def _forget(k: int) -> Callable[[weakref.ref[Tensor]], None]:
    """The callback that drops a dead tensor's hooks (binding the dict: at interpreter exit the
    module's globals may already be gone)."""
    hooks = _hooks

    def forget(_: weakref.ref[Tensor]) -> None:
        hooks.pop(k, None)

    return forget


def run(tensor: Tensor, grad: Tensor) -> Tensor:
    """``grad`` passed through ``tensor``'s hooks in order (a copy of the list: a hook may remove
    itself); a hook's Tensor result replaces it, after a check of its shape."""
    entry = _hooks.get(id(tensor))
    for hook in list(entry[1].values()) if entry is not None else ():
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
