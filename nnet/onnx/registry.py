"""The table of converters: one function per op type, writing that op's ONNX nodes.

A converter takes the :class:`~nnet.onnx.builder.Builder` and the traced
:class:`~nnet.onnx.trace.Node` and returns the name of the ONNX value that holds the op's result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``op class -> converter``; filled by nnet/onnx/primitives.py and nnet/onnx/kernels.py, and by
#: :func:`register` for a user's own primitives.
CONVERTERS: dict[type, Callable[[Any, Any], str]] = {}


class ExportError(ValueError):
    """A model, op or argument that :func:`nnet.onnx.export` cannot write as ONNX."""


def register(op: type) -> Callable[[Callable[[Any, Any], str]], Callable[[Any, Any], str]]:
    """Register a converter for the op class ``op`` (a :class:`~nnet.autograd.Function`).

    The converter is called as ``convert(b, node)`` and returns the name of its output: ``node.args``
    are the op's arguments (a :class:`~nnet.onnx.trace.Value` for what depends on the model's
    input, the constant itself otherwise), ``b.arg(a, dtype)`` names either, and
    ``b.add(op_type, inputs, **attributes)`` adds one ONNX node.

    >>> import numpy as np, nnet, nnet.onnx
    >>> class Double(nnet.autograd.Function):
    ...     def forward(ctx, x):
    ...         return 2 * x
    ...     def vjp(ctx, grad):
    ...         return (2 * grad,)
    >>> @nnet.onnx.register(Double)
    ... def convert_double(b, node):
    ...     (x,) = node.args
    ...     return b.add("Add", [b.arg(x), b.arg(x)])
    >>> Double in nnet.onnx.CONVERTERS
    True
    """

    def add(convert: Callable[[Any, Any], str]) -> Callable[[Any, Any], str]:
        CONVERTERS[op] = convert
        return convert

    return add


def converter_for(op: Any, where: str) -> Callable[[Any, Any], str]:
    """The converter of ``op``'s class, or an :class:`ExportError` naming the op, the module it ran
    in (``where``) and what to do."""
    kind = type(op)
    try:
        return CONVERTERS[kind]
    except KeyError:
        raise ExportError(
            f"nnet.onnx.export: {kind.__name__} ({kind.__module__}.{kind.__qualname__}) has no "
            f"ONNX converter; it ran in {where}. Compute that part of forward with ops that export "
            "(the classes in nnet.onnx.CONVERTERS), or write a converter for it with "
            f"@nnet.onnx.register({kind.__name__}) (see docs/onnx.md)"
        ) from None
