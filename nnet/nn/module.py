"""`Module`, the base of every layer, and `Parameter`, a tensor that a module learns.

A module registers what is assigned to it: a :class:`Parameter` becomes a parameter, a
:class:`Module` a sub-module, and tensors given to :meth:`Module.register_buffer` buffers
(state that is saved but not learned, like batch norm's running statistics). Everything
registered is also a plain instance attribute, so reading ``self.weight`` in ``forward`` costs
an ordinary attribute lookup.

>>> import nnet
>>> class Affine(nnet.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.scale = nnet.nn.Parameter(nnet.ones(3))
...         self.register_buffer("calls", nnet.zeros((), dtype="int64"))
...     def forward(self, x):
...         return x * self.scale
>>> m = Affine()
>>> [name for name, _ in m.named_parameters()], list(m.state_dict())
(['scale'], ['scale', 'calls'])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from nnet.autograd import pending
from nnet.autograd.defaults import get_default_dtype
from nnet.autograd.grad_mode import no_grad
from nnet.autograd.tensor import Tensor
from nnet.devices import split_to_args
from nnet.nn import hooks


class Parameter(Tensor):
    """A tensor that a module learns: it requires gradients unless told otherwise.

    ``Parameter(t)`` shares ``t``'s array; the results of operations on it are plain tensors.

    >>> import nnet
    >>> p = nnet.nn.Parameter(nnet.zeros(2))
    >>> p.requires_grad, type(p * 2).__name__
    (True, 'Tensor')
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        super().__init__(np.empty(0, get_default_dtype()) if data is None else data, requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` found missing from, or extra in, the state dict."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _as_tensor_or_none(value: Any, what: str) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor(value)
    raise TypeError(f"{what} must be a Tensor, a NumPy array or None, got {type(value).__name__}")


class Module(hooks.ModuleHooks):
    """Base class of layers and models: subclass it, assign layers and parameters in ``__init__``
    (after ``super().__init__()``), and define ``forward``.

    ``module(x)`` runs ``forward(x)``, with the hooks registered by ``register_forward_pre_hook``,
    ``register_forward_hook`` and ``register_full_backward_hook`` around it (nnet/nn/hooks.py).
    ``.training`` says whether the module is in training mode (:meth:`train`, :meth:`eval`); dropout
    and batch norm read it.
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _modules: dict[str, Module | None]
    _non_persistent: set[str]

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation; every subclass defines it. Call the module itself, not
        ``forward``, so that its hooks run."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not pending.is_open():
            # the outermost call: layers inside may defer, to fuse; none is pending after it
            return pending.outermost(self._call, args, kwargs)
        if self._hooked:  # forward or backward hooks registered (nnet/nn/hooks.py)
            return hooks.call(self, args, kwargs)
        return self.forward(*args, **kwargs)

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        if self._hooked:
            return hooks.call(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # -- registration -----------------------------------------------------------------------------
    def _registries(self) -> tuple[dict, dict, dict]:
        try:
            return (
                self.__dict__["_parameters"],
                self.__dict__["_buffers"],
                self.__dict__["_modules"],
            )
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() in __init__ before assigning "
                "parameters, buffers or sub-modules"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        params, buffers, modules = self._registries()
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter '{name}' of "
                    f"{type(self).__name__}: wrap it as nnet.nn.Parameter(...) or assign None"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to sub-module '{name}' of "
                    f"{type(self).__name__}: assign a Module or None"
                )
            modules[name] = None
        elif name in buffers:
            value = _as_tensor_or_none(value, f"buffer '{name}'")
            buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in self._registries():
            registry.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def _check_name(self, name: str, kind: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
        if name in self.__dict__ and not any(name in r for r in self._registries()):
            raise KeyError(f"attribute '{name}' already exists and is not a {kind}")

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add a buffer: state saved in :meth:`state_dict` (when ``persistent``) but not learned."""
        params, buffers, modules = self._registries()
        self._check_name(name, "buffer")
        params.pop(name, None)
        modules.pop(name, None)
        buffers[name] = _as_tensor_or_none(tensor, f"buffer '{name}'")
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, buffers[name])

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or ``None``, a declared but absent one such as a disabled bias)."""
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None")
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a sub-module under ``name`` (what attribute assignment does for ordinary names)."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"module name must be a non-empty string without '.', got {name!r}")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: '{name}' must be a Module or None")
        self._registries()[2][name] = module
        object.__setattr__(self, name, module)

    # -- traversal --------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Every module in the tree (this one first), each once, with its dotted name."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{k}" if name else k, m)
                for k, m in module._modules.items()
                if m is not None
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every module inside it, depth first (each once)."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct submodules, as ``(name, module)`` pairs."""
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        """The direct submodules."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules() if recurse else iter([("", self)])
        for prefix, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two layers appears once."""
        return self._named_members("_parameters", recurse)  # type: ignore[return-value]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The parameters of this module (and of its submodules when ``recurse``), each once: what
        an optimizer takes."""
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """The buffers (untrained state such as running statistics), as ``(name, tensor)`` pairs."""
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The buffers (state that is not trained, such as running statistics)."""
        for _, b in self.named_buffers(recurse):
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module and then on this one (e.g. a custom initialisation)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes and gradients ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or evaluation mode on this module and all below it."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: dropout passes inputs through, batch norm uses running statistics."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter (``False`` freezes the module); returns the module."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``None`` (the default, no memory traffic) or zeros."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    # -- dtype ------------------------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Convert floating-point parameters and buffers to ``dtype`` in place (same objects, so
        optimizers keep their references); integer buffers such as counters stay as they are.
        PyTorch's ``.to(device)`` / ``.to(device, dtype)`` are accepted: the CPU is the only device."""
        dtype = split_to_args(args, kwargs, "Module.to")
        if dtype is None:
            return self
        if dtype.kind != "f":
            raise TypeError(f"Module.to: expected a floating-point dtype, got {dtype}")
        for t in (*self.parameters(), *self.buffers()):
            if t.data.dtype.kind == "f" and t.data.dtype != dtype:
                t.data = t.data.astype(dtype)
                if t.grad is not None:
                    t.grad = Tensor(t.grad.data.astype(dtype))
        return self

    def cpu(self) -> Module:
        """The module itself: nnet computes on the CPU."""
        return self

    def float(self) -> Module:
        """Parameters and buffers to float32, in place; returns the module."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Parameters and buffers to float64, in place; returns the module."""
        return self.to(np.float64)

    # -- state ------------------------------------------------------------------------------------
    def _state_items(self) -> Iterator[tuple[str, Tensor]]:
        """(key, tensor) for every parameter and persistent buffer, under all the names it has."""
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    yield dot + name, p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    yield dot + name, b

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """A snapshot of the parameters and persistent buffers: dotted names -> array copies.

        Copies, so that later training steps do not change a saved "best" state; PyTorch's names
        (``0.weight``, ``bn.running_mean``) so the keys read the same.
        """
        return OrderedDict((k, t.data.copy()) for k, t in self._state_items())

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy values into the parameters and buffers (in place, so views and optimizer references
        stay valid), after checking everything first: nothing is changed when anything is wrong.

        Raises ValueError listing the missing keys, unexpected keys (only when ``strict``) and shape
        or dtype mismatches (always). Returns the missing and unexpected keys.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping, got {type(state_dict).__name__}")
        own = OrderedDict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        pending = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.shape != target.data.shape:
                problems.append(
                    f"shape mismatch for '{key}': the state dict has {array.shape}, "
                    f"the model has {target.data.shape}"
                )
            elif not np.can_cast(array.dtype, target.data.dtype, casting="same_kind"):
                problems.append(
                    f"dtype mismatch for '{key}': the state dict has {array.dtype}, "
                    f"the model has {target.data.dtype}"
                )
            else:
                pending.append((target, array))
        if strict and (missing or unexpected):
            if missing:
                problems.insert(0, "missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                problems.insert(
                    1 if missing else 0,
                    "unexpected keys: " + ", ".join(repr(k) for k in unexpected),
                )
        if problems:
            raise ValueError(
                f"error loading the state dict into {type(self).__name__} "
                "(nothing was changed):\n  " + "\n  ".join(problems)
            )
        with no_grad():
            for target, array in pending:
                if target.data.flags.writeable:
                    np.copyto(target.data, array, casting="same_kind")
                else:
                    target.data = array.astype(target.data.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    # -- printing ---------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr``; layers override it."""
        return ""

    def __repr__(self) -> str:
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, module in self._modules.items():
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"
