"""How tensors and ops look in traces and drawings: values and signed gradients, names, op labels.

Shared by :mod:`nnet.autograd.trace` and :mod:`nnet.viz`. Small tensors show their numbers (up to 4
elements, 16 in teaching mode); larger ones their shape and a summary (mean, min, max).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnet.autograd.defaults import teaching_enabled
from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor

#: the binary ops whose constant operand reads best as an expression: ``Pow (x ** 2)``
_SYMBOLS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Pow": "**", "MatMul": "@"}

_names: dict[int, tuple[weakref.ReferenceType[Tensor], str]] = {}


def get_name(t: Tensor) -> str | None:
    """The name given with ``t.name = ...`` (None when none was)."""
    entry = _names.get(id(t))
    return entry[1] if entry is not None and entry[0]() is t else None


def set_name(t: Tensor, name: str | None) -> None:
    """Name ``t`` for traces and drawings (``t.name = "e"``); None removes the name."""
    key = id(t)
    if name is None:
        _names.pop(key, None)
        return
    if not isinstance(name, str):
        raise TypeError(f"name: a tensor's name is a str, got {type(name).__name__}")
    _names[key] = (weakref.ref(t, lambda ref: _forget(key, ref)), name)


def _forget(key: int, ref: weakref.ReferenceType[Tensor]) -> None:
    entry = _names.get(key)
    if entry is not None and entry[0] is ref:
        del _names[key]


def verbose() -> bool:
    return teaching_enabled.get()


def number(x: float, digits: int) -> str:
    """``-3``, ``0.7071``, ``1.5e-08``: significant digits, no trailing zeros."""
    return f"{x:.{digits}g}"


def values(a: Any) -> str:
    """A tensor's or array's values for a label: the numbers when few, else shape and summary."""
    arr = np.asarray(a.data if isinstance(a, Tensor) else a)
    teach = verbose()
    limit, digits = (16, 6) if teach else (4, 4)
    if arr.dtype.kind not in "fiub":
        return f"{arr.dtype} {arr.shape}"
    if arr.size <= limit:
        if arr.ndim == 0:
            return number(float(arr), digits)
        text = np.array2string(
            arr.astype(np.float64),
            separator=", ",
            formatter={"float_kind": lambda x: number(x, digits)},  # type: ignore[arg-type]
            max_line_width=10_000,
        )
        return " ".join(text.split())
    f = arr.astype(np.float64)
    shape = "x".join(map(str, arr.shape))
    return (
        f"{shape}: mean {number(f.mean(), digits)}, min {number(f.min(), digits)}, "
        f"max {number(f.max(), digits)}"
    )


def names_of(params: Any, names: Any, op: str) -> dict[int, str]:
    """``id(tensor) -> name`` from ``params`` (a Module's ``named_parameters()`` or a dict of
    name -> tensor) and ``names`` (a dict of name -> tensor, for any tensor of the graph)."""
    out: dict[int, str] = {}
    for what, given in (("params", params), ("names", names)):
        if given is None:
            continue
        if what == "params" and hasattr(given, "named_parameters"):
            items = given.named_parameters()
        elif isinstance(given, Mapping):
            items = given.items()
        else:
            kind = "a Module or a dict" if what == "params" else "a dict"
            raise TypeError(
                f"{op}: {what} must be {kind} of name -> Tensor, got {type(given).__name__}"
            )
        out.update({id(t): str(name) for name, t in items if isinstance(t, Tensor)})
    return out


def name_of(t: Tensor, names: dict[int, str]) -> str | None:
    """The name to show for ``t``: from the mapping, else ``t.name``."""
    return names.get(id(t)) or get_name(t)


def is_tensor(x: Any) -> bool:
    """A tensor, or a released op's sketch of one (sketch.py): a node of a drawing, not a constant."""
    return isinstance(x, Tensor) or getattr(x, "is_tensor", False) is True


def live(x: Any) -> Tensor | None:
    """The tensor itself: ``x``, or the tensor a sketch stands for while somebody still holds it."""
    return x if isinstance(x, Tensor) else x.tensor()


def _constant(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return values(x)
    if isinstance(x, (float, np.floating)):
        return number(float(x), 6)
    return repr(x)


def _parameter_names(fn: Function) -> list[str]:
    try:
        params = list(inspect.signature(type(fn).forward).parameters)
    except (TypeError, ValueError):  # a ufunc as forward (Add, Mul, ...)
        return []
    return params[1:] if params and params[0] in ("ctx", "self") else params


def op_label(fn: Function, inputs: tuple[Any, ...] | None, module: str | None = None) -> str:
    """``Pow (x ** 2)``, ``Sub (1 - x)``, ``Sum (axes=(0,))``, ``0:Linear``: the op's name with its
    module's path and its constant arguments, in order."""
    name = f"{module}:{fn.name}" if module else fn.name
    if not inputs:
        return name
    consts = [(i, x) for i, x in enumerate(inputs) if not is_tensor(x) and x is not None]
    if not consts:
        return name
    symbol = _SYMBOLS.get(fn.name)
    if symbol and len(inputs) == 2:
        i, c = consts[0]
        expr = f"x {symbol} {_constant(c)}" if i == 1 else f"{_constant(c)} {symbol} x"
        return f"{name} ({expr})"
    params = _parameter_names(fn)
    shown = []
    for i, c in consts:
        if isinstance(c, bool) and not c:
            continue  # keepdims=False and the like: the default, noise in a label
        label = params[i] if i < len(params) else f"arg{i}"
        shown.append(f"{label}={_constant(c)}")
    return f"{name} ({', '.join(shown)})" if shown else name


def module_of(fn: Function, inputs: tuple[Any, ...] | None, names: dict[int, str]) -> str | None:
    """The module path of the first named parameter among ``fn``'s inputs (``0.weight`` -> ``0``)."""
    for x in inputs or ():
        t = live(x) if is_tensor(x) else None
        if t is not None and t.grad_fn is None:
            name = names.get(id(t))
            if name and "." in name:
                return name.rsplit(".", 1)[0]
    return None
