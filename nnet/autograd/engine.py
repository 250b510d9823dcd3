"""Reverse-mode traversal: an iterative topological walk with dependency counts, never recursion.

The walk first counts, for every tensor reachable from the roots, how many recorded operations consume it;
then it runs VJPs in an order where a tensor's gradient is complete (all consumers done) before its own
VJP runs. Gradients live in a table keyed by tensor id and leave it as soon as they are used. The first
contribution is kept without a copy; a second is added into a fresh buffer, later ones in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.tensor import Tensor, _as_array

_make = Tensor._make


class GraphReleasedError(RuntimeError):
    """Backward reached an operation whose saved arrays were already released."""


def unbroadcast(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    The one place where broadcasting is undone (see docs/derivations.md, "Broadcasting").
    """
    gshape = grad.data.shape
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    if lead < 0:
        raise RuntimeError(f"a VJP returned a gradient of shape {gshape} for an input of shape {shape}")
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and gshape[i + lead] != 1
    )
    out = grad.sum(axis=axes, keepdims=True) if axes else grad
    if lead:
        out = out.reshape(shape)
    if out.data.shape != shape:
        raise RuntimeError(f"a VJP returned a gradient of shape {gshape} for an input of shape {shape}")
    return out


def _root_gradient(root: Tensor, gradient: Any) -> Tensor:
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: the output has shape {root.shape}; a gradient can be implied only for a "
                "one-element output. Reduce it first (e.g. loss.sum()) or pass gradient= of that shape"
            )
        return _make(np.ones(root.data.shape, root.data.dtype), False, None)
    g = gradient if isinstance(gradient, Tensor) else _make(_as_array(gradient), False, None)
    if g.shape != root.shape:
        raise ValueError(
            f"backward: gradient has shape {g.shape} but the output has shape {root.shape}"
        )
    return g


def _count_consumers(roots: Sequence[Tensor]) -> dict[int, int]:
    """For each tensor reachable from the roots, how many recorded operations consume it."""
    deps: dict[int, int] = {}
    stack = list(roots)
    while stack:
        fn = stack.pop().grad_fn
        if fn is None:
            continue
        if fn.released:
            raise GraphReleasedError(
                f"backward through {fn.name} a second time: its saved arrays were released by the "
                "first backward. Pass retain_graph=True to the first backward (or to nnet.grad) "
                "if you need to backpropagate through the same graph again"
            )
        for p, need in zip(fn.inputs, fn.needs_input_grad):  # type: ignore[arg-type]
            if need:
                k = id(p)
                if k in deps:
                    deps[k] += 1
                else:
                    deps[k] = 1
                    stack.append(p)
    return deps


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Propagate ``root_grads`` from ``roots``. With ``capture``, return the gradients of those tensors
    instead of accumulating into leaves' ``.grad``."""
    deps = _count_consumers(roots)
    captured: dict[int, Tensor] | None = None
    if capture is not None:
        captured = {}
        wanted = {id(t) for t in capture}
    # id -> [tensor, gradient, owned]; holding the tensor keeps its id from being reused mid-walk
    table: dict[int, list[Any]] = {}
    for r, g in zip(roots, root_grads):
        k = id(r)
        if k in table:
            table[k][1] = _make(table[k][1].data + g.data, False, None)
            table[k][2] = True
        else:
            table[k] = [r, g, False]
    ready = [r for r in dict.fromkeys(roots) if id(r) not in deps]

    token = grad_enabled.set(create_graph)
    try:
        while ready:
            t = ready.pop()
            entry = table.pop(id(t), None)
            fn = t.grad_fn
            g = entry[1] if entry is not None else None
            if g is not None:
                owned = entry[2]  # type: ignore[index]
                if captured is not None and id(t) in wanted:
                    captured[id(t)] = g if owned else _make(g.data.copy(), g.requires_grad, g.grad_fn)
                    owned = False
                if fn is None:
                    if captured is None:
                        _accumulate_leaf(t, g, owned, create_graph)
                    continue
                if t._retains_grad and captured is None:
                    t.grad = _make(g.data.copy(), False, None) if not create_graph else g
                grads = fn.vjp(g)
                if grads.__class__ is not tuple:
                    grads = tuple(grads) if isinstance(grads, list) else (grads,)
                if len(grads) != len(fn.inputs):  # type: ignore[arg-type]
                    raise RuntimeError(
                        f"{fn.name}.vjp returned {len(grads)} gradients for "
                        f"{len(fn.inputs)} inputs; return one per input, None where there is none"  # type: ignore[arg-type]
                    )
            elif fn is None:
                continue
            else:
                grads = (None,) * len(fn.inputs)  # type: ignore[arg-type]
            inputs, needs = fn.inputs, fn.needs_input_grad
            if not retain_graph:
                fn.inputs = None
                fn.saved = ()
                fn.released = True
            gdata = g.data if g is not None else None
            for p, need, gp in zip(inputs, needs, grads):  # type: ignore[arg-type]
                if not need:
                    continue
                k = id(p)
                if gp is not None:
                    if gp.data.shape != p.data.shape:
                        gp = unbroadcast(gp, p.data.shape)
                    if gp.data.dtype != p.data.dtype:
                        gp = gp.astype(p.data.dtype)
                    prev = table.get(k)
                    if prev is None:
                        d = gp.data
                        # owned: a fresh array that no one else holds (not the incoming one, not a view)
                        owned = d is not gdata and d.base is None and sum(x is gp for x in grads) == 1
                        table[k] = [p, gp, owned]
                    elif create_graph:
                        prev[1] = prev[1] + gp
                    elif prev[2]:
                        np.add(prev[1].data, gp.data, out=prev[1].data)
                    else:
                        prev[1] = _make(prev[1].data + gp.data, False, None)
                        prev[2] = True
                left = deps[k] - 1
                deps[k] = left
                if left == 0:
                    ready.append(p)
                    if k not in table:
                        table[k] = [p, None, False]
    finally:
        grad_enabled.reset(token)
    if captured is None:
        return None
    return [captured.get(id(t)) for t in capture]  # type: ignore[union-attr]


def _accumulate_leaf(leaf: Tensor, g: Tensor, owned: bool, create_graph: bool) -> None:
    if leaf.grad is None:
        if create_graph:
            leaf.grad = g
        else:
            leaf.grad = _make(g.data if owned else g.data.copy(), False, None)
    elif create_graph:
        leaf.grad = leaf.grad + g
    else:
        leaf.grad = _make(leaf.grad.data + g.data, False, None)


def backward(
    tensor: Tensor, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False
) -> None:
    """``tensor.backward(...)``: accumulate gradients into the leaves' ``.grad``."""
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require gradients and has no grad_fn; create the "
            "inputs with requires_grad=True (and not inside nnet.no_grad())"
        )
    if retain_graph is None:
        retain_graph = create_graph
    run_backward([tensor], [_root_gradient(tensor, gradient)], retain_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned rather than stored in ``.grad``.

    >>> import nnet
    >>> x = nnet.tensor(3.0, requires_grad=True)
    >>> (dx,) = nnet.grad(x * x, x, create_graph=True)
    >>> (ddx,) = nnet.grad(dx, x)
    >>> float(dx), float(ddx)
    (6.0, 2.0)
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        gos = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    else:
        gos = list(grad_outputs)
    if len(gos) != len(outs):
        raise ValueError(f"grad: {len(outs)} outputs but {len(gos)} grad_outputs")
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require gradients")
    for o in outs:
        if not o.requires_grad:
            raise RuntimeError(
                f"grad: an output (shape {o.shape}) does not require gradients; it does not depend "
                "on any input that requires them"
            )
    if retain_graph is None:
        retain_graph = create_graph
    root_grads = [_root_gradient(o, g) for o, g in zip(outs, gos)]
    result = run_backward(outs, root_grads, retain_graph, create_graph, capture=ins)
    assert result is not None
    for i, r in enumerate(result):
        if r is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {ins[i].shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return tuple(result)
