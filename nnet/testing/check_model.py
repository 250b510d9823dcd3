"""Whole-model gradient checks that name the culprit: every node of one forward, checked on its own.

:func:`check_model` runs the model once in float64 (a copy of a Module, converted), recording where each
operation was created (:mod:`nnet.testing.sites`). Then, for every node of the graph and every input
that takes a gradient, it compares the node's VJP at its actual inputs with central differences of
the node's own forward: for a random upstream ``v`` and a random direction ``u``,

    numerical <v, f(x + h u) - f(x - h u)> / 2h   against   analytical <J^T v, u>

(the dot-product test of derivations.md#the-vjp, so a node of any size costs two forwards per input,
not a Jacobian). Both of a node's rules are checked, ``vjp`` and ``vjp_arrays`` when the class has its
own. A mismatch is confirmed at a step 100 times smaller before it counts, so a perturbation that
happens to cross a kink (relu at 0, a max-pool tie) is not reported as a wrong rule.

>>> import numpy as np, nnet
>>> from nnet import nn
>>> model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
>>> report = check_model(model, np.ones((5, 3), np.float32))
>>> report.ok, len(report.nodes) > 0
(True, True)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.grad_mode import enable_grad, no_grad
from nnet.autograd.tensor import Tensor
from nnet.autograd.unbroadcast import unbroadcast_array
from nnet.testing.sites import Site, recording_sites

__all__ = ["CheckModelError", "ModelCheck", "NodeCheck", "check_model"]


class CheckModelError(AssertionError):
    """A node's VJP disagrees with central differences of its forward (``raise_exception=True``)."""


@dataclass
class NodeCheck:
    """One rule of one node, checked for one input."""

    op: str
    rule: str  # "vjp" or "vjp_arrays"
    input_index: int
    input_shapes: list[tuple[int, ...]]
    numerical: float
    analytical: float
    relative_error: float
    passed: bool
    where: str
    via: str

    def text(self) -> str:
        shapes = ", ".join(str(s) for s in self.input_shapes)
        via = f"\n    (called from {self.via})" if self.via else ""
        return (
            f"{self.op}.{self.rule}, gradient of input {self.input_index}; inputs of shapes {shapes}: "
            f"relative error {self.relative_error:.3g} (numerical <v, J u> = {self.numerical:.10g}, "
            f"analytical <J^T v, u> = {self.analytical:.10g})\n  created at {self.where}{via}"
        )


@dataclass
class ModelCheck:
    """What :func:`check_model` found: one :class:`NodeCheck` per node, rule and input, in the order
    the forward created the nodes. Truthy when every check passed; ``str()`` names the first failure."""

    nodes: list[NodeCheck] = field(default_factory=list)
    atol: float = 0.0
    rtol: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every node's check passed (also the report's truth value)."""
        return all(c.passed for c in self.nodes)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def failures(self) -> list[NodeCheck]:
        """The nodes whose check failed."""
        return [c for c in self.nodes if not c.passed]

    def __str__(self) -> str:
        ops = len({c.op for c in self.nodes})
        head = (
            f"check_model: {len(self.nodes)} checks over {ops} kinds of op "
            f"(atol={self.atol}, rtol={self.rtol}): "
        )
        bad = self.failures
        if not bad:
            return head + "all passed"
        return (
            head + f"{len(bad)} failed. First failure: {bad[0].text()}\n"
            "Its VJP does not match central differences of its forward: check the rule "
            "(docs/derivations.md) against the forward it differentiates."
        )


def _float64(x: Any, wrap: bool) -> Any:
    """A floating-point Tensor or array in float64 (a Tensor keeps its ``requires_grad``); an
    array becomes a Tensor when ``wrap`` (a Module's input), else stays an array (a constant)."""
    if isinstance(x, Tensor):
        if x.data.dtype.kind != "f":
            return x
        return Tensor(x.data.astype(np.float64), requires_grad=x.requires_grad)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return Tensor(x.astype(np.float64)) if wrap else x.astype(np.float64)
    return x


def _graph(outputs: list[Tensor]) -> list[Function]:
    """Every node reachable from the outputs, in creation order."""
    seen: set[int] = set()
    nodes: list[Function] = []
    stack = [o.grad_fn for o in outputs if o.grad_fn is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        nodes.append(fn)
        stack.extend(
            p.grad_fn for p in fn.inputs or () if isinstance(p, Tensor) and p.grad_fn is not None
        )
    return sorted(nodes, key=lambda fn: fn.seq)


class _Node:
    """One node's forward, re-run on perturbed copies of its inputs' arrays."""

    def __init__(self, fn: Function, params: dict[str, Any]) -> None:
        self.fn = fn
        self.params = params
        self.inputs = fn.inputs or ()
        self.arrays = [a.data if isinstance(a, Tensor) else a for a in self.inputs]
        self.keep: Tensor | None = None

    def nudged(self, rng: np.random.Generator) -> _Node:
        """The same op applied anew, each input that takes a gradient moved by a random 1e-3 of
        its scale: off any exact tie or kink, far beyond the central differences' step."""
        args = [
            Tensor(a + 1e-3 * (1.0 + float(np.sqrt(np.mean(a * a)))) * rng.standard_normal(a.shape),
                   requires_grad=True)
            if need and isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size
            else t
            for t, a, need in zip(self.inputs, self.arrays, self.fn.needs_input_grad, strict=True)
        ]  # fmt: skip
        with enable_grad():
            out = type(self.fn).apply(*args, **self.params)
        node = _Node(out.grad_fn, self.params)  # type: ignore[arg-type]
        node.keep = out  # a node that saves its output holds it by a weak reference
        return node

    def forward(self, i: int, value: np.ndarray) -> np.ndarray:
        args = list(self.arrays)
        args[i] = value
        ctx = object.__new__(type(self.fn))
        with no_grad():
            return np.asarray(ctx.forward(*args, **self.params), dtype=np.float64)

    def directional(self, i: int, v: np.ndarray, u: np.ndarray, h: float) -> float:
        x = self.arrays[i]
        plus, minus = self.forward(i, x + h * u), self.forward(i, x - h * u)
        return float(np.sum(v * (plus - minus)) / (2 * h))

    def rules(self, v: np.ndarray) -> dict[str, list[Any]]:
        """The gradients each rule returns for upstream ``v``, reduced to the inputs' shapes."""
        fn = self.fn
        with no_grad():
            found: dict[str, Any] = {"vjp": fn.vjp(Tensor(v))}
            if type(fn).vjp_arrays is not Function.vjp_arrays:
                found["vjp_arrays"] = fn.vjp_arrays(v.copy())
        out = {}
        for rule, grads in found.items():
            if not isinstance(grads, (tuple, list)):
                grads = (grads,)
            out[rule] = [
                None
                if g is None
                else unbroadcast_array(
                    np.asarray(g.data if isinstance(g, Tensor) else g, np.float64), np.shape(a)
                )
                for g, a in zip(grads, self.arrays, strict=False)
            ]
        return out


def _relative(num: float, ana: float) -> float:
    scale = max(abs(num), abs(ana))
    return 0.0 if scale == 0 else abs(num - ana) / scale


def _compare(
    node: _Node, i: int, v: np.ndarray, u: np.ndarray, eps: float, atol: float, rtol: float
) -> dict[str, tuple[float, float, bool]]:
    """``rule -> (numerical, analytical, passed)`` for input ``i``, along ``u``, upstream ``v``."""
    x = node.arrays[i]
    h = eps * (1.0 + float(np.sqrt(np.mean(x * x)))) if x.size else eps
    num = node.directional(i, v, u, h)
    fine: float | None = None
    out = {}
    for rule, grads in node.rules(v).items():
        g = grads[i] if i < len(grads) else None
        ana = 0.0 if g is None else float(np.sum(g * u))
        ok = abs(num - ana) <= atol + rtol * max(abs(num), abs(ana))
        if not ok:  # confirm at a smaller step: a kink crossed by h u is not a wrong rule
            fine = node.directional(i, v, u, h / 100) if fine is None else fine
            ok = abs(fine - ana) <= atol + rtol * max(abs(fine), abs(ana))
        out[rule] = (fine if ok and fine is not None else num, ana, ok)
    return out


def _check_node(
    node: _Node, site: Site, rng: np.random.Generator, eps: float, atol: float, rtol: float
) -> list[NodeCheck]:
    out0 = node.forward(0, node.arrays[0]) if node.arrays else None
    if out0 is None or out0.dtype.kind != "f":
        return []
    v = rng.standard_normal(out0.shape)
    shapes = [tuple(np.shape(a)) for a in node.arrays]
    nudged: _Node | None = None
    checks = []
    for i, need in enumerate(node.fn.needs_input_grad):
        x = node.arrays[i]
        if not need or not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            continue
        u = rng.standard_normal(x.shape)
        results = _compare(node, i, v, u, eps, atol, rtol)
        if not all(ok for _, _, ok in results.values()):
            # An input exactly at a kink (max-pool windows of ReLU zeros tie) has no derivative
            # to compare with: a rule that passes at a nearby point is right, a wrong one fails
            # there too.
            nudged = nudged or node.nudged(rng)
            again = _compare(nudged, i, v, rng.standard_normal(x.shape), eps, atol, rtol)
            results = {r: again[r] if again[r][2] else res for r, res in results.items()}
        for rule, (num, ana, ok) in results.items():
            checks.append(
                NodeCheck(
                    node.fn.name, rule, i, shapes, num, ana, _relative(num, ana), ok,
                    site.where, site.via,
                )
            )  # fmt: skip
    return checks


def check_model(
    fn_or_module: Callable[..., Any],
    *inputs: Any,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    eps: float = 1e-6,
    seed: int = 0,
    raise_exception: bool = False,
) -> ModelCheck:
    """Check every node of one forward of ``fn_or_module`` on its own, in float64.

    Parameters
    ----------
    fn_or_module : Module or callable
        A Module is deep-copied and converted to float64 (the original is untouched; its training
        mode is kept). A plain function is called as it is, so it must work on float64 inputs.
    *inputs
        Tensors or arrays; floating-point ones are converted to float64 (a Tensor keeps its
        ``requires_grad``). A float array becomes a Tensor (taking no gradient) for a Module and
        stays an array (a constant) for a function. Others (labels, parameters) pass unchanged.
    atol, rtol : float
        A check passes when ``|numerical - analytical| <= atol + rtol * max(|numerical|, |analytical|)``.
    eps : float
        Central-difference step, scaled by ``1 + rms`` of the input it perturbs.
    seed : int
        Seeds the random upstream gradients and directions.
    raise_exception : bool
        Raise :class:`CheckModelError` (naming the first failing node) instead of returning a
        failing report.

    Returns
    -------
    ModelCheck
        ``report.ok`` (also its truth value), ``report.nodes``, ``report.failures``; ``str(report)``
        names the first failure: the op, its input shapes, the relative error, and the file and line
        that created it.
    """
    if not callable(fn_or_module):
        raise TypeError(
            f"check_model: expects a Module or a function, got {type(fn_or_module).__name__}"
        )
    subject = fn_or_module
    is_module = hasattr(fn_or_module, "named_parameters") and hasattr(fn_or_module, "to")
    if is_module:
        subject = copy.deepcopy(fn_or_module).to(np.float64)  # type: ignore[attr-defined]
    args = [_float64(x, wrap=is_module) for x in inputs]
    with enable_grad(), recording_sites() as sites:
        result = subject(*args)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    if not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError(
            "check_model: the model must return a Tensor or a tuple of Tensors, got "
            f"{type(result).__name__}"
        )
    nodes = [fn for fn in _graph(outputs) if fn in sites]
    if not nodes:
        raise ValueError(
            "check_model: the forward recorded no operation; the model has no parameters that "
            "require gradients and no input does (pass a Tensor with requires_grad=True)"
        )
    rng = np.random.default_rng(seed)
    report = ModelCheck(atol=atol, rtol=rtol)
    for fn in nodes:
        site = sites[fn]
        report.nodes.extend(_check_node(_Node(fn, site.params), site, rng, eps, atol, rtol))
    if raise_exception and not report.ok:
        raise CheckModelError(str(report))
    return report
