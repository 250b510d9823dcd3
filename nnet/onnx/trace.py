"""One forward of a model, recorded as nnet's graph and read back as a list of nodes to convert.

The input is wrapped as a tensor that requires a gradient, so every op that depends on it is
recorded (``Function.apply`` links a node only when an input needs a gradient). Walking back from
the outputs gives the nodes in creation order (``Function.seq``), which is a topological order.
Anything that does not depend on the input (parameters, buffers, values computed from them) is a
constant of the exported model.

Two traces run: the example input, and a second one with one more row (or the same rows in another
order, for a fixed batch). Comparing them tells which axes follow the batch size, and catches a
constant that was computed from the input's values, which the graph cannot show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnet.autograd import function as _function
from nnet.autograd.compare import recording_comparisons
from nnet.autograd.function import Function
from nnet.autograd.grad_mode import enable_grad
from nnet.autograd.tensor import Tensor
from nnet.kernels.mode import use_fused
from nnet.onnx.registry import ExportError


@dataclass
class Value:
    """A tensor of the exported graph: computed from the input(s), or an input itself."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    #: per axis, whether its size follows the batch size (it differed between the two traces)
    batch: tuple[bool, ...]
    #: the values of the first trace, for converters that must recognise a pattern
    data: np.ndarray
    #: the first trace's tensor, whose ``grad_fn`` is the op that made it (None for an input)
    source: Tensor


@dataclass
class Node:
    """One recorded op: the Function, its arguments (a :class:`Value` for what depends on the
    input, the constant itself for the rest) and its output."""

    fn: Function
    args: tuple[Any, ...]
    #: each argument of the second trace, to check that constants do not depend on the input
    args2: tuple[Any, ...]
    out: Value
    where: str  # the module path and class the op ran in, for error messages

    @property
    def op(self) -> str:
        return type(self.fn).__name__


@dataclass
class Traced:
    """A model's forward as nodes in topological order."""

    inputs: list[Value]
    outputs: list[Value]
    nodes: list[Node]


@dataclass
class _Run:
    inputs: list[Tensor]
    outputs: list[Tensor]
    nodes: list[Function]
    scopes: list[tuple[int, int, str]]  # (first seq, last seq, module path) of each module call


def _record(model: Any, example: list[np.ndarray], fused: bool) -> _Run:
    """Run ``model`` once on ``example``, recording every op and the module each ran in."""
    inputs = [Tensor(np.array(a), requires_grad=True) for a in example]
    scopes: list[tuple[int, int, str]] = []
    hooked = []
    for path, m in model.named_modules() if hasattr(model, "named_modules") else ():
        label = f"{path or '(model)'} ({type(m).__name__})"
        m.__dict__["forward"] = _scoped(m.forward, label, scopes)
        hooked.append(m)
    try:
        with use_fused(fused), enable_grad(), recording_comparisons():
            out = model(*inputs)
    finally:
        for m in hooked:
            del m.__dict__["forward"]
    outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    for i, o in enumerate(outputs):
        if not isinstance(o, Tensor):
            raise ExportError(
                f"nnet.onnx.export: output {i} of the model is a {type(o).__name__}, not a Tensor; "
                "return a Tensor or a tuple of Tensors from forward"
            )
    return _Run(inputs, outputs, _nodes(outputs, {id(t) for t in inputs}), scopes)


def _scoped(forward: Any, label: str, scopes: list[tuple[int, int, str]]) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        # each call takes a number from the ops' own counter before and after, so the ops it
        # created are those numbered in between (the counter only needs to increase)
        first = _function._next_seq()
        try:
            return forward(*args, **kwargs)
        finally:
            scopes.append((first, _function._next_seq(), label))

    return run


def _nodes(outputs: list[Tensor], inputs: set[int]) -> list[Function]:
    """The ops on a path from an input to an output, in the order they ran."""
    depends: dict[int, bool] = {i: True for i in inputs}
    found: dict[int, Function] = {}
    stack: list[tuple[Tensor, bool]] = [(t, False) for t in outputs]
    while stack:
        t, expanded = stack.pop()
        if id(t) in depends:
            continue
        fn = t.grad_fn
        if fn is None or fn.inputs is None:
            depends[id(t)] = False
            continue
        parents = [a for a in fn.inputs if isinstance(a, Tensor)]
        if not expanded:
            stack.append((t, True))
            stack.extend((p, False) for p in parents if id(p) not in depends)
            continue
        depends[id(t)] = any(depends[id(p)] for p in parents)
        if depends[id(t)]:
            found[id(fn)] = fn
    return sorted(found.values(), key=lambda fn: fn.seq)


def _where(fn: Function, scopes: list[tuple[int, int, str]]) -> str:
    inner = [(last - first, label) for first, last, label in scopes if first < fn.seq < last]
    return min(inner)[1] if inner else "(outside any module)"


def trace(model: Any, example: list[np.ndarray], dynamic_batch: bool, fused: bool) -> Traced:
    """Trace ``model`` on ``example`` and on a second input (see the module's docstring)."""
    if dynamic_batch:
        second = [np.concatenate([a[::-1], a[:1]]) for a in example]
    else:
        second = [
            a[::-1] * np.asarray(0.75, a.dtype) if a.dtype.kind == "f" else a for a in example
        ]
    run1 = _record(model, example, fused)
    run2 = _record(model, second, fused)
    kinds1 = [type(fn) for fn in run1.nodes]
    kinds2 = [type(fn) for fn in run2.nodes]
    if kinds1 != kinds2 or len(run1.outputs) != len(run2.outputs):
        fix = "export with dynamic_batch=False" if dynamic_batch else "make the forward's ops fixed"
        raise ExportError(
            "nnet.onnx.export: the forward ran different ops for a second input"
            + (" with one more row" if dynamic_batch else "")
            + f" ({len(kinds1)} ops, then {len(kinds2)}): its graph depends on the input; {fix}"
        )
    values: dict[int, Value] = {}
    inputs = []
    for i, (t1, t2) in enumerate(zip(run1.inputs, run2.inputs, strict=True)):
        values[id(t1)] = _value(f"input_{i}", t1, t2)
        inputs.append(values[id(t1)])
    made1, made2 = _outputs(run1), _outputs(run2)
    nodes = []
    for k, (fn1, fn2) in enumerate(zip(run1.nodes, run2.nodes, strict=True)):
        args = tuple(
            (values.get(id(a)) or a.data) if isinstance(a, Tensor) else a for a in fn1.inputs or ()
        )
        args2 = tuple(a.data if isinstance(a, Tensor) else a for a in fn2.inputs or ())
        out = made1[id(fn1)]
        v = _value(f"{type(fn1).__name__.lower()}_{k}", out, made2[id(fn2)])
        values[id(out)] = v
        nodes.append(Node(fn1, args, args2, v, _where(fn1, run1.scopes)))
    outputs = []
    for i, t in enumerate(run1.outputs):
        if id(t) not in values:
            raise ExportError(
                f"nnet.onnx.export: output {i} of the model does not depend on its input; "
                "an exported model computes its outputs from its inputs"
            )
        outputs.append(values[id(t)])
    return Traced(inputs, outputs, nodes)


def _outputs(run: _Run) -> dict[int, Tensor]:
    """``id(op) -> the tensor it made``: each is an argument of a later op or a model output."""
    made = {id(t.grad_fn): t for t in run.outputs if t.grad_fn is not None}
    for fn in run.nodes:
        for a in fn.inputs or ():
            if isinstance(a, Tensor) and a.grad_fn is not None:
                made.setdefault(id(a.grad_fn), a)
    return made


def _value(name: str, t1: Tensor, t2: Tensor) -> Value:
    s1, s2 = t1.shape, t2.shape
    batch = (
        tuple(a != b for a, b in zip(s1, s2, strict=True))
        if len(s1) == len(s2)
        else (False,) * len(s1)
    )
    return Value(name, s1, t1.dtype, batch, t1.data, t1)
