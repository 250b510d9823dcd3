"""Comparisons and logical ops (``==``, ``<``, ``~``, ``&``, ...): bool results, no gradient, kept
out of the graph except while nnet.onnx traces a model, which needs to know how a condition was computed
from the model's input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from nnet.autograd.errors import operand_error
from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor
from nnet.autograd.version import next_seq as _next_seq

_make = Tensor._make


def _value(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


class Compare(Function):
    """A comparison or logical op (``ufunc``), linked into the graph only while
    :func:`recording_comparisons` is on (the ONNX trace), so that the exported graph can compute a
    condition from its input. It has no gradient: its output is bool."""

    saved_inputs = "none"

    ufunc: np.ufunc  # the comparison, set where the node is linked (compare)

    def vjp(ctx, grad):
        return (None,) * len(ctx.inputs)

    vjp_arrays = vjp


#: Whether comparisons of tensors that depend on a traced input are recorded (see Compare).
_record_comparisons: ContextVar[bool] = ContextVar("nnet_record_comparisons", default=False)


@contextmanager
def recording_comparisons() -> Iterator[None]:
    """Record comparisons and logical ops of tensors in the graph (nnet.onnx's trace): their bool
    results take a ``grad_fn`` that names the op and its operands, without requiring a gradient."""
    token = _record_comparisons.set(True)
    try:
        yield
    finally:
        _record_comparisons.reset(token)


def compare(op: np.ufunc, a: Any, b: Any = None) -> Tensor:
    """A comparison or logical op: a bool tensor outside the graph (see recording_comparisons)."""
    args = (_value(a),) if b is None else (_value(a), _value(b))
    try:
        out = _make(np.asarray(op(*args)), False, None)
    except (ValueError, TypeError) as e:
        raise operand_error(op.__name__, e, *args) from None
    if _record_comparisons.get():
        operands = (a,) if b is None else (a, b)
        if any(
            isinstance(t, Tensor) and (t.requires_grad or t.grad_fn is not None) for t in operands
        ):
            ctx = Compare()
            ctx.ufunc = op
            ctx.inputs = operands
            ctx.needs_input_grad = (False,) * len(operands)
            ctx.seq = _next_seq()
            out.grad_fn = ctx
    return out


def recorded_condition(condition: Any) -> bool:
    """Whether ``condition`` is a traced comparison, to stay an input of the node that reads it."""
    return (
        _record_comparisons.get()
        and isinstance(condition, Tensor)
        and isinstance(condition.grad_fn, Compare)
    )
