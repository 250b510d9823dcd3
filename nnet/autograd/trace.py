"""Watching backward run: each op's VJP as the engine calls it, with the gradients in and out.

:func:`trace` runs an ordinary ``backward`` (same engine, same results in ``.grad``). Before it
starts, it numbers the graph's operations in the order they were recorded (``#1`` is the first; one
numbering for the steps and the tensors they hand gradients to), labels tensors by name (``names=``,
``t.name``, a parameter's module path), and hooks every operation of this one graph
(``Function.hook_vjp``: instance attributes ``vjp`` and ``vjp_arrays``) with a wrapper that calls
the class's rule and records what went in and out: values and gradients with their signs, how many
contributions were summed into a gradient, and a gradient after the engine sums it over broadcast
axes. Afterwards it removes the hooks. Instance attributes are found before the class's methods, so
the normal backward path has no hook, no flag and no cost.

>>> import nnet
>>> x = nnet.tensor([1.0, -2.0], requires_grad=True)
>>> t = nnet.autograd.trace((x * x).sum(), echo=False)
>>> print(t)
#2 Sum (axes=(0,))       value 5              grad in 1
       -> #1 Mul         grad [1, 1]
#1 Mul                   value [1, 4]         grad in [1, 1]
       -> leaf (2,)      grad [1, -2]
       -> leaf (2,)      grad [1, -2]
leaf (2,)                value [1, -2]        .grad [2, -4]  (sum of 2 contributions)
>>> x.grad.numpy()
array([ 2., -4.], dtype=float32)
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

import numpy as np

from nnet.autograd.engine import backward
from nnet.autograd.function import Function
from nnet.autograd.show import module_of, name_of, names_of, op_label, values
from nnet.autograd.tensor import Tensor
from nnet.autograd.unbroadcast import unbroadcast_array


def norm(t: Tensor) -> float:
    """The Euclidean norm of a tensor's values, in float64."""
    return float(np.linalg.norm(np.asarray(t.data, dtype=np.float64)))


def param_names(params: Any, op: str) -> dict[int, str]:
    """``id(tensor) -> name`` from a Module (``named_parameters()``) or a dict of name -> tensor."""
    return names_of(params, None, op)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _contributions(k: int) -> str:
    return f"  (sum of {k} contributions)" if k > 1 else ""


@dataclass
class HandOn:
    """One gradient a VJP handed to one input: its values (signed), and after the engine's sum over
    broadcast axes when the input is smaller."""

    to: str
    input_shape: tuple[int, ...]
    grad_shape: tuple[int, ...] | None  # None: no gradient (the input needs none)
    norm: float | None
    grad: str = ""
    summed_grad: str = ""

    @property
    def summed(self) -> bool:
        """True when the engine will sum this gradient over broadcast axes to fit the input."""
        return self.grad_shape is not None and self.grad_shape != self.input_shape

    def text(self) -> str:
        if self.grad_shape is None:
            return f"       -> {self.to:<14} (no gradient)"
        note = f"  summed to {_shape(self.input_shape)}: {self.summed_grad}" if self.summed else ""
        return f"       -> {self.to:<14} grad {self.grad}{note}"


@dataclass
class Step:
    """One VJP call: the op (numbered in recording order), its output's value, the gradient it
    received (with how many contributions were summed into it), the gradients it handed on."""

    index: int
    op: str
    grad_shape: tuple[int, ...]
    grad_norm: float
    handed: list[HandOn] = field(default_factory=list)
    label: str = ""
    value: str = ""
    grad: str = ""
    contributions: int = 1

    def text(self) -> str:
        head = f"{self.label or self.op:<24} value {self.value:<14} "
        lines = [head + f"grad in {self.grad}{_contributions(self.contributions)}"]
        return "\n".join(lines + [h.text() for h in self.handed])


class Leaf(NamedTuple):
    """A leaf's ``.grad`` after the traced backward."""

    name: str
    shape: tuple[int, ...]
    norm: float
    value: str = ""
    grad: str = ""
    contributions: int = 1


@dataclass
class BackwardTrace:
    """What :func:`trace` saw: the VJP steps in the order they ran, then each leaf's ``.grad``.

    Prints as text (``str(trace)``) and shows as a table in a notebook (``_repr_html_``).
    """

    steps: list[Step] = field(default_factory=list)
    leaves: list[Leaf] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([*(s.text() for s in self.steps), *self._leaf_lines()])

    def __repr__(self) -> str:
        return f"<BackwardTrace: {len(self.steps)} VJP steps, {len(self.leaves)} leaves>"

    def _leaf_lines(self) -> list[str]:
        return [
            f"{leaf.name:<24} value {leaf.value:<14} .grad {leaf.grad}"
            + _contributions(leaf.contributions)
            for leaf in self.leaves
        ]

    def _repr_html_(self) -> str:
        def cell(x: Any) -> str:
            return f"<td>{html.escape(str(x))}</td>"

        head = "".join(
            f"<th>{h}</th>" for h in ("op", "value", "grad in", "hands to", "grad out", "note")
        )
        rows = []
        for s in self.steps:
            outs = s.handed or [HandOn("", (), None, None)]
            for i, h in enumerate(outs):
                first = i == 0
                note = f"summed to {_shape(h.input_shape)}: {h.summed_grad}" if h.summed else ""
                rows.append(
                    "<tr>"
                    + cell((s.label or s.op) if first else "")
                    + cell(s.value if first else "")
                    + cell(s.grad + _contributions(s.contributions) if first else "")
                    + cell(h.to)
                    + cell(h.grad if h.grad_shape is not None else "none")
                    + cell(note)
                    + "</tr>"
                )
        for leaf in self.leaves:
            rows.append(
                "<tr>" + cell(leaf.name) + cell(leaf.value) + cell("") + cell(".grad")
                + cell(leaf.grad) + cell(_contributions(leaf.contributions).strip()) + "</tr>"
            )  # fmt: skip
        return (
            "<table><thead><tr>"
            + head
            + "</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )


def trace(
    tensor: Tensor,
    gradient: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    params: Any = None,
    echo: bool = True,
    file: IO[str] | None = None,
    names: Any = None,
) -> BackwardTrace:
    """``tensor.backward(...)``, printing each VJP as it runs; returns the record as a table.

    Parameters
    ----------
    tensor, gradient, retain_graph, create_graph
        As for :meth:`Tensor.backward`; gradients accumulate into ``.grad`` as usual.
    params : Module or dict of name -> Tensor, optional
        Names for the leaves (a Module's parameters by their module path); ops that take a module's
        parameter are labelled by its path (``0:Linear``).
    echo : bool
        Print each step as it runs (to ``file``, standard output by default). In a notebook, pass
        ``echo=False`` and let the returned table display.
    names : dict of name -> Tensor, optional
        Names for any tensor of the graph (``t.name = ...`` does the same).
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"trace: expects a Tensor, got {type(tensor).__name__}")
    out = file if file is not None else sys.stdout
    given = names_of(params, names, "trace")
    labels: dict[int, str] = {}
    fns: list[tuple[Function, Tensor]] = []
    stack, seen = [tensor], {id(tensor)}
    leaves: list[Tensor] = []
    while stack:
        t = stack.pop()
        fn = t.grad_fn
        if fn is None:
            if t.requires_grad:
                leaves.append(t)
                labels[id(t)] = name_of(t, given) or f"leaf {_shape(t.shape)}"
            continue
        fns.append((fn, t))
        for p in fn.inputs or ():
            if isinstance(p, Tensor) and p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    fns.sort(key=lambda pair: pair[0].seq)  # one numbering: the order the ops were recorded
    numbers = {id(fn): k for k, (fn, _) in enumerate(fns, 1)}
    for fn, t in fns:
        op = op_label(fn, fn.inputs, module_of(fn, fn.inputs, given))
        name = name_of(t, given)
        labels[id(t)] = f"{name} (#{numbers[id(fn)]} {op})" if name else f"#{numbers[id(fn)]} {op}"

    record = BackwardTrace()
    received: dict[int, int] = {}  # contributions summed into each tensor's gradient so far
    hooks = ("vjp", "vjp_arrays")
    shadowed = [(fn, [fn.__dict__.get(h) for h in hooks]) for fn, _ in fns]
    for fn, t in fns:
        step = _Recorder(fn, t, numbers[id(fn)], labels, received, record, out if echo else None)
        fn.hook_vjp(step.wrap(fn.vjp))
    try:
        backward(tensor, gradient, retain_graph=retain_graph, create_graph=create_graph)
    finally:
        for fn, previous in shadowed:
            for h, p in zip(hooks, previous, strict=True):
                if p is None:
                    delattr(fn, h)
                else:
                    setattr(fn, h, p)
    record.leaves = [
        Leaf(
            labels[id(t)],
            t.shape,
            norm(t._grad),
            values(t),
            values(t._grad),
            received.get(id(t), 1),
        )
        for t in leaves
        if t._grad is not None
    ]
    if echo:
        for line in record._leaf_lines():
            print(line, file=out)
    return record


class _Recorder:
    """Wraps one op's VJP (the class's rule or an earlier wrapper) to record a :class:`Step`."""

    def __init__(self, fn: Function, t: Tensor, index: int, labels: dict[int, str],
                 received: dict[int, int], record: BackwardTrace, out: IO[str] | None) -> None:  # fmt: skip
        self.fn, self.index, self.labels, self.received = fn, index, labels, received
        self.record, self.out = record, out
        self.value = values(t)
        self.label = labels[id(t)]
        self.op = op_label(fn, fn.inputs)
        self.output = id(t)

    def wrap(self, vjp: Any) -> Any:
        def vjp_recorded(grad: Tensor) -> Any:
            fn = self.fn
            inputs = fn.inputs or ()
            grads = vjp(grad)
            as_tuple = grads if isinstance(grads, (tuple, list)) else (grads,)
            step = Step(
                self.index, self.op, grad.shape, norm(grad), label=self.label, value=self.value,
                grad=values(grad), contributions=self.received.get(self.output, 1),
            )  # fmt: skip
            for p, need, g in zip(inputs, fn.needs_input_grad, as_tuple, strict=False):
                if not need:
                    continue
                to = self.labels.get(id(p), "?")
                if g is None:
                    step.handed.append(HandOn(to, p.shape, None, None))
                    continue
                self.received[id(p)] = self.received.get(id(p), 0) + 1
                summed = ""
                if g.shape != p.shape:
                    summed = values(unbroadcast_array(np.asarray(g.data), p.shape))
                step.handed.append(
                    HandOn(to, p.shape, g.shape, norm(g), grad=values(g), summed_grad=summed)
                )
            self.record.steps.append(step)
            if self.out is not None:
                print(step.text(), file=self.out, flush=True)
            return grads

        return vjp_recorded
