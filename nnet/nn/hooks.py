"""Module hooks, PyTorch's semantics: code that runs around a module's forward and backward.

* ``register_forward_pre_hook(hook)``: ``hook(module, args)`` before ``forward``; a result (a tuple,
  or one value) replaces the positional arguments.
* ``register_forward_hook(hook)``: ``hook(module, args, output)`` after ``forward``; a result
  replaces the output.
* ``register_full_backward_hook(hook)``: ``hook(module, grad_input, grad_output)`` once the
  gradients with respect to the module's tensor inputs are computed; ``grad_output`` holds those
  with respect to its outputs, and a returned tuple replaces ``grad_input``.

Each returns a handle whose ``remove()`` takes the hook away. A module without hooks pays one
attribute test per call. The backward hook puts an identity op on the input that needs a gradient
and on each output: the outputs' ops see the gradients arriving from after the module, the input's
op runs once all of the module's own backward is done, and calls the hooks there. Sequential skips
its fused runs of layers for any run holding a hooked module, so every hook sees its own layer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.tensor import Tensor

if TYPE_CHECKING:
    from nnet.nn.module import Module

_next_key = itertools.count().__next__
_KINDS = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks")


class RemovableHandle:
    """What a module's ``register_*_hook`` returns: ``handle.remove()`` takes the hook away."""

    def __init__(self, module: ModuleHooks, kind: str, key: int) -> None:
        self._module = module
        self._kind = kind
        self._key = key

    def remove(self) -> None:
        m = self._module
        m.__dict__.get(self._kind, {}).pop(self._key, None)
        object.__setattr__(m, "_hooked", any(m.__dict__.get(k) for k in _KINDS))


class ModuleHooks:
    """The hook registration methods of :class:`~nnet.nn.Module`."""

    #: True while the module has a hook: its call then goes through :func:`call`.
    _hooked = False

    def _register(self, kind: str, hook: Callable[..., Any], what: str) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"{what}: {hook!r} is not callable")
        hooks = self.__dict__.get(kind)
        if hooks is None:
            hooks = {}
            object.__setattr__(self, kind, hooks)
        key = _next_key()
        hooks[key] = hook
        object.__setattr__(self, "_hooked", True)
        return RemovableHandle(self, kind, key)

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Run ``hook(module, args)`` before every forward; a non-None result (a tuple, or one
        value) replaces the positional arguments.

        >>> import nnet
        >>> layer = nnet.nn.ReLU()
        >>> handle = layer.register_forward_pre_hook(lambda m, args: (args[0] - 1,))
        >>> layer(nnet.tensor([3.0])).item()
        2.0
        >>> handle.remove()
        """
        return self._register("_forward_pre_hooks", hook, "register_forward_pre_hook")

    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Run ``hook(module, args, output)`` after every forward; a non-None result replaces
        the output.

        >>> import nnet
        >>> shapes = []
        >>> layer = nnet.nn.Linear(3, 2)
        >>> handle = layer.register_forward_hook(lambda m, args, out: shapes.append(out.shape))
        >>> _ = layer(nnet.ones((4, 3)))
        >>> shapes
        [(4, 2)]
        """
        return self._register("_forward_hooks", hook, "register_forward_hook")

    def register_full_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Run ``hook(module, grad_input, grad_output)`` in every backward through the module:
        ``grad_input`` has one entry per tensor positional input (None where it needs no gradient),
        ``grad_output`` one per output tensor. A returned tuple replaces ``grad_input``.

        >>> import nnet
        >>> layer = nnet.nn.Linear(2, 1)
        >>> seen = []
        >>> h = layer.register_full_backward_hook(lambda m, gi, go: seen.append(go[0].shape))
        >>> layer(nnet.ones((5, 2), requires_grad=True)).sum().backward()
        >>> seen
        [(5, 1)]
        """
        return self._register("_backward_hooks", hook, "register_full_backward_hook")


def call(module: Module, args: tuple, kwargs: dict) -> Any:
    """``module(*args, **kwargs)`` with its hooks, in PyTorch's order: forward pre-hooks, the
    backward hook's input op, forward, forward hooks, the backward hook's output ops."""
    hooks = module.__dict__
    for hook in list(hooks.get("_forward_pre_hooks", {}).values()):
        out = hook(module, args)
        if out is not None:
            args = out if isinstance(out, tuple) else (out,)
    backward = list(hooks.get("_backward_hooks", {}).values())
    state = _BackwardState(module, backward, args) if backward and grad_enabled.get() else None
    if state is not None:
        args = state.wrap_inputs(args)
    result = module.forward(*args, **kwargs)
    for hook in list(hooks.get("_forward_hooks", {}).values()):
        out = hook(module, args, result)
        if out is not None:
            result = out
    return state.wrap_outputs(result) if state is not None else result


class _BackwardState:
    """One call's bookkeeping for a full backward hook: which input gets the gradient, and the
    gradients with respect to the outputs as they arrive."""

    def __init__(self, module: Module, hooks: list[Callable[..., Any]], args: tuple) -> None:
        self.module = module
        self.hooks = hooks
        tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.slots = {i: n for n, i in enumerate(tensors)}  # arg position -> grad_input position
        self.wanted = [i for i in tensors if args[i].requires_grad]
        if len(self.wanted) > 1:
            raise NotImplementedError(
                f"register_full_backward_hook: {type(module).__name__} was called with "
                f"{len(self.wanted)} tensors that require gradients; nnet's full backward hooks "
                "support one. Register tensor hooks (Tensor.register_hook) on the inputs instead"
            )
        self.grad_output: list[Any] = []

    def wrap_inputs(self, args: tuple) -> tuple:
        if not self.wanted:
            return args
        (i,) = self.wanted
        x = _HookInput.apply(args[i])
        x.grad_fn.state = self  # type: ignore[union-attr]
        return args[:i] + (x,) + args[i + 1 :]

    def wrap_outputs(self, result: Any) -> Any:
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        self.grad_output = [None] * len(outputs)
        wrapped = list(outputs)
        for n, y in enumerate(outputs):
            if isinstance(y, Tensor) and y.requires_grad:
                wrapped[n] = _HookOutput.apply(y)
                wrapped[n].grad_fn.state = self
                wrapped[n].grad_fn.index = n
        if isinstance(result, (tuple, list)):
            return type(result)(wrapped)
        return wrapped[0]

    def fire(self, grad: Tensor | None) -> Tensor | None:
        """The hooks, with the gradient reaching the module's input (None when none needs one)."""
        grad_input: tuple[Any, ...] = tuple(None for _ in self.slots)
        if grad is not None:
            grad_input = tuple(
                grad if pos == self.slots[self.wanted[0]] else None
                for pos in range(len(grad_input))
            )
        for hook in self.hooks:
            out = hook(self.module, grad_input, tuple(self.grad_output))
            if out is not None:
                grad_input = tuple(out)
        if grad is None:
            return None
        return grad_input[self.slots[self.wanted[0]]]


class _HookInput(Function):
    """Identity on the module's input; its VJP runs after the module's backward and calls the
    module's backward hooks (d x = g)."""

    def forward(ctx, a):
        return a

    def vjp(ctx, grad):
        return (ctx.state.fire(grad),)


class _HookOutput(Function):
    """Identity on an output; its VJP notes the gradient arriving there (d y = g). With no input
    needing a gradient, the first output's op calls the hooks itself."""

    def forward(ctx, a):
        return a

    def vjp(ctx, grad):
        state = ctx.state
        state.grad_output[ctx.index] = grad
        if not state.wanted and ctx.index == 0:
            state.fire(None)
        return (grad,)
