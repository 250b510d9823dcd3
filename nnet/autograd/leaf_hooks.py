"""Hooks that run as soon as a leaf's gradient is final during a backward, before the walk ends.

A data-parallel wrapper needs to know when a parameter's ``.grad`` is complete so that it can start
sending it while the backward is still running (PyTorch's ``register_post_accumulate_grad_hook``).
The engine's walk keeps leaves' gradients to the end; when any leaf has such a hook, it first counts,
for each hooked leaf, the recorded edges that will deliver a gradient to it, and accumulates the leaf
into ``.grad`` and runs its hooks when the last one has arrived. Without hooks nothing is counted.

That count is a walk over the whole graph before each backward (about 35 us for the seed CNN), paid
as soon as one leaf has a hook. A wrapper that only needs every gradient at once (one bucket: nothing
can be sent before the last one) registers instead a callback that the engine runs once at the end
of each backward, with the leaves that backward accumulated into (:func:`register_backward_end`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from nnet.autograd.hook_table import Hook, HookTable, RemovableHandle

if TYPE_CHECKING:
    from nnet.autograd.tensor import Tensor

_hooks = HookTable()


def register(tensor: Tensor, hook: Hook) -> RemovableHandle:
    """Run ``hook(tensor)`` after every backward's accumulation into ``tensor.grad``.

    The registry holds ``hook`` until the tensor dies or the handle removes it; a hook that refers
    to its own tensor (or to something that holds it) keeps the tensor alive, so refer to such
    objects weakly (the tensor itself is the hook's argument) or remove the handle.
    """
    if not tensor.requires_grad or tensor.grad_fn is not None:
        why = (
            "is the result of an operation"
            if tensor.grad_fn is not None
            else "does not require gradients"
        )
        raise RuntimeError(
            "register_post_accumulate_grad_hook: only a leaf that requires gradients accumulates "
            f"into .grad; this tensor (shape {tensor.shape}) {why}. Register the hook on the leaf "
            "(e.g. a Parameter) instead"
        )
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: {hook!r} is not callable")
    return _hooks.add(tensor, hook)


def any_hooks() -> bool:
    return len(_hooks) > 0


#: Callbacks run at the end of every backward that accumulates into ``.grad``, by key.
_at_end: dict[int, Callable[[Collection[int]], None]] = {}
_next_end_key = itertools.count().__next__


class _EndHandle:
    """What :func:`register_backward_end` returns: ``remove()`` takes the callback away."""

    def __init__(self, key: int) -> None:
        self._key = key

    def remove(self) -> None:
        _at_end.pop(self._key, None)


def register_backward_end(callback: Callable[[Collection[int]], None]) -> _EndHandle:
    """Run ``callback(leaf_ids)`` at the end of every backward that accumulates into leaves'
    ``.grad`` (``Tensor.backward``; not ``nnet.grad``), after the accumulation, with the ids of the
    leaves that backward gave a gradient. The registry holds ``callback`` until the handle removes
    it: refer weakly to what it should not keep alive."""
    if not callable(callback):
        raise TypeError(f"register_backward_end: {callback!r} is not callable")
    key = _next_end_key()
    _at_end[key] = callback
    return _EndHandle(key)


def run_backward_end(leaf_ids: Collection[int]) -> None:
    """Run the end-of-backward callbacks (a copy of the list: one may remove itself)."""
    for callback in list(_at_end.values()):
        callback(leaf_ids)


def hooked_edge_counts(roots: Sequence[Tensor]) -> dict[int, int]:
    """For each hooked leaf reachable from ``roots``, by id: how many recorded edges lead to it
    with a gradient wanted (the walk delivers one contribution per such edge)."""
    counts: dict[int, int] = {}
    seen: set[int] = set()
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in seen or fn.inputs is None:
            continue
        seen.add(id(fn))
        for p, need in zip(fn.inputs, fn.needs_input_grad, strict=False):
            if not need:
                continue
            pfn = p.grad_fn
            if pfn is not None:
                stack.append(pfn)
            elif id(p) in _hooks:
                counts[id(p)] = counts.get(id(p), 0) + 1
    return counts


def run(leaf: Tensor) -> None:
    """Run ``leaf``'s hooks (a copy of the list: a hook may remove itself)."""
    for hook in _hooks.hooks(leaf):
        hook(leaf)
