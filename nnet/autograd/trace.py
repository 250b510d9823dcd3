"""Watching backward run: each op's VJP as the engine calls it, with the gradients in and out.

:func:`trace` runs an ordinary ``backward`` (same engine, same results in ``.grad``). Before it
starts, it hooks every operation of this one graph (``Function.hook_vjp``: instance attributes
``vjp`` and ``vjp_arrays``) with a wrapper that calls the class's rule and records what went in and
out; afterwards it removes them. Instance attributes are found before the class's methods, so the
normal backward path has no hook, no flag and no cost.

>>> import nnet
>>> x = nnet.tensor([1.0, -2.0], requires_grad=True)
>>> t = nnet.autograd.trace((x * x).sum(), echo=False)
>>> [row.op for row in t.steps]
['Sum[1]', 'Mul[2]']
>>> x.grad.numpy()
array([ 2., -4.], dtype=float32)
"""

from __future__ import annotations

import html
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from nnet.autograd.engine import backward
from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor


def norm(t: Tensor) -> float:
    """The Euclidean norm of a tensor's values, in float64."""
    return float(np.linalg.norm(np.asarray(t.data, dtype=np.float64)))


def param_names(params: Any, op: str) -> dict[int, str]:
    """``id(tensor) -> name`` from a Module (``named_parameters()``) or a dict of name -> tensor."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        items = params.named_parameters()
    elif isinstance(params, Mapping):
        items = params.items()
    else:
        raise TypeError(
            f"{op}: params must be a Module or a dict of name -> Tensor, got {type(params).__name__}"
        )
    return {id(t): str(name) for name, t in items if isinstance(t, Tensor)}


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


@dataclass
class HandOn:
    """One gradient a VJP handed to one input."""

    to: str
    input_shape: tuple[int, ...]
    grad_shape: tuple[int, ...] | None  # None: no gradient (the input needs none)
    norm: float | None

    @property
    def summed(self) -> bool:
        """True when the engine will sum this gradient over broadcast axes to fit the input."""
        return self.grad_shape is not None and self.grad_shape != self.input_shape


@dataclass
class Step:
    """One VJP call: the op, the gradient it received, the gradients it handed on."""

    index: int
    op: str
    grad_shape: tuple[int, ...]
    grad_norm: float
    handed: list[HandOn] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"[{self.index:>3}] {self.op:<16} grad in {_shape(self.grad_shape):<14} "
            f"|g| = {self.grad_norm:.4g}"
        ]
        for h in self.handed:
            if h.grad_shape is None:
                lines.append(f"        -> {h.to:<18} (no gradient)")
                continue
            note = f"  summed to {_shape(h.input_shape)}" if h.summed else ""
            lines.append(
                f"        -> {h.to:<18} {_shape(h.grad_shape):<14} |g| = {h.norm:.4g}{note}"
            )
        return "\n".join(lines)


@dataclass
class BackwardTrace:
    """What :func:`trace` saw: the VJP steps in the order they ran, then each leaf's ``.grad``.

    Prints as text (``str(trace)``) and shows as a table in a notebook (``_repr_html_``).
    """

    steps: list[Step] = field(default_factory=list)
    leaves: list[tuple[str, tuple[int, ...], float]] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([*(s.text() for s in self.steps), *self._leaf_lines()])

    def __repr__(self) -> str:
        return f"<BackwardTrace: {len(self.steps)} VJP steps, {len(self.leaves)} leaves>"

    def _leaf_lines(self) -> list[str]:
        return [
            f"leaf {name:<20} .grad {_shape(shape):<14} |grad| = {norm:.4g}"
            for name, shape, norm in self.leaves
        ]

    def _repr_html_(self) -> str:
        def cell(x: Any) -> str:
            return f"<td>{html.escape(str(x))}</td>"

        head = "".join(
            f"<th>{h}</th>"
            for h in ("step", "op", "grad in", "|g|", "hands to", "grad out", "|g out|", "note")
        )
        rows = []
        for s in self.steps:
            outs = s.handed or [HandOn("", (), None, None)]
            for i, h in enumerate(outs):
                first = i == 0
                rows.append(
                    "<tr>"
                    + cell(s.index if first else "")
                    + cell(s.op if first else "")
                    + cell(_shape(s.grad_shape) if first else "")
                    + cell(f"{s.grad_norm:.4g}" if first else "")
                    + cell(h.to)
                    + cell(_shape(h.grad_shape) if h.grad_shape is not None else "none")
                    + cell(f"{h.norm:.4g}" if h.norm is not None else "")
                    + cell(f"summed to {_shape(h.input_shape)}" if h.summed else "")
                    + "</tr>"
                )
        for name, shape, norm in self.leaves:
            rows.append(
                "<tr>" + cell("") + cell(f"leaf {name}") + cell("") + cell("") + cell(".grad")
                + cell(_shape(shape)) + cell(f"{norm:.4g}") + cell("") + "</tr>"
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
) -> BackwardTrace:
    """``tensor.backward(...)``, printing each VJP as it runs; returns the record as a table.

    Parameters
    ----------
    tensor, gradient, retain_graph, create_graph
        As for :meth:`Tensor.backward`; gradients accumulate into ``.grad`` as usual.
    params : Module or dict of name -> Tensor, optional
        Names for the leaves (a Module's parameters by their module path).
    echo : bool
        Print each step as it runs (to ``file``, standard output by default). In a notebook, pass
        ``echo=False`` and let the returned table display.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"trace: expects a Tensor, got {type(tensor).__name__}")
    out = file if file is not None else sys.stdout
    names = param_names(params, "trace")
    labels: dict[int, str] = {}
    fns: list[tuple[Function, str]] = []
    stack, seen = [tensor], {id(tensor)}
    leaves: list[Tensor] = []
    while stack:
        t = stack.pop()
        fn = t.grad_fn
        if fn is None:
            if t.requires_grad:
                leaves.append(t)
                labels[id(t)] = names.get(id(t), f"leaf {_shape(t.shape)}")
            continue
        labels[id(t)] = f"{fn.name}[{len(fns) + 1}]"
        fns.append((fn, labels[id(t)]))
        for p in fn.inputs or ():
            if isinstance(p, Tensor) and p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)

    record = BackwardTrace()
    hooks = ("vjp", "vjp_arrays")
    shadowed = [(fn, [fn.__dict__.get(h) for h in hooks]) for fn, _ in fns]
    for fn, label in fns:
        fn.hook_vjp(_recording(fn, label, fn.vjp, labels, record, out if echo else None))
    try:
        backward(tensor, gradient, retain_graph=retain_graph, create_graph=create_graph)
    finally:
        for fn, previous in shadowed:
            for h, p in zip(hooks, previous, strict=True):
                if p is None:
                    delattr(fn, h)
                else:
                    setattr(fn, h, p)
    record.leaves = [(labels[id(t)], t.shape, norm(t.grad)) for t in leaves if t.grad is not None]
    if echo:
        for line in record._leaf_lines():
            print(line, file=out)
    return record


def _recording(
    fn: Function,
    label: str,
    vjp: Any,
    labels: dict[int, str],
    record: BackwardTrace,
    out: IO[str] | None,
) -> Any:
    """``fn``'s VJP (``vjp``, the class's rule or an earlier wrapper) that also records a Step."""

    def vjp_recorded(grad: Tensor) -> Any:
        grads = vjp(grad)
        as_tuple = grads if isinstance(grads, (tuple, list)) else (grads,)
        step = Step(len(record.steps) + 1, label, grad.shape, norm(grad))
        for p, need, g in zip(fn.inputs or (), fn.needs_input_grad, as_tuple, strict=False):
            if not need:
                continue
            to = labels.get(id(p), "?")
            if g is None:
                step.handed.append(HandOn(to, p.shape, None, None))
            else:
                step.handed.append(HandOn(to, p.shape, g.shape, norm(g)))
        record.steps.append(step)
        if out is not None:
            print(step.text(), file=out, flush=True)
        return grads

    return vjp_recorded
