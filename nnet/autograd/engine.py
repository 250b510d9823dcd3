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


def _added(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` as an array: NumPy gives a scalar for two 0-d arrays, which can't be added into."""
    out = a + b
    return out if out.__class__ is np.ndarray else np.asarray(out)


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
        raise RuntimeError(
            f"a VJP returned a gradient of shape {gshape} for an input of shape {shape}"
        )
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and gshape[i + lead] != 1
    )
    out = grad.sum(axis=axes, keepdims=True) if axes else grad
    if lead:
        out = out.reshape(shape)
    if out.data.shape != shape:
        raise RuntimeError(
            f"a VJP returned a gradient of shape {gshape} for an input of shape {shape}"
        )
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
    stack = list(dict.fromkeys(roots))  # a root given twice is walked once
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
        for p, need in zip(fn.inputs, fn.needs_input_grad, strict=True):  # type: ignore[arg-type]
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
    wanted: set[int] = set()
    if capture is not None:
        captured = {}
        wanted = {id(t) for t in capture}
    # A gradient still waiting for contributions sits in `table` as [gradient, owned]; once complete
    # it moves to `ready` with its tensor. `owned` marks a gradient array nobody else can see, which
    # may therefore be added to in place. A tensor is kept alive by its unprocessed consumers'
    # inputs, then by `ready`, so its id is never reused while it is a key.
    table: dict[int, list[Any]] = {}
    g: Tensor | None  # a root's gradient here; in the walk, None when no path carried one
    for r, g in zip(roots, root_grads, strict=True):
        k = id(r)
        if k in table:
            table[k] = [_make(_added(table[k][0].data, g.data), False, None), True]
        else:
            table[k] = [g, False]
    ready: list[tuple[Tensor, Tensor | None, bool]] = []
    for r in dict.fromkeys(roots):
        if id(r) not in deps:
            g, own = table.pop(id(r))
            ready.append((r, g, own))

    token = grad_enabled.set(create_graph)
    try:
        while ready:
            t, g, own = ready.pop()
            if captured is not None and g is not None and id(t) in wanted:
                # with create_graph the gradient must stay the graph's own tensor, never a copy
                captured[id(t)] = g if own or create_graph else _make(g.data.copy(), False, None)
                own = False
            fn = t.grad_fn
            if fn is None:
                if g is not None and captured is None:
                    _accumulate_leaf(t, g, own, create_graph)
                continue
            inputs, needs = fn.inputs, fn.needs_input_grad
            n = len(needs)
            if g is not None:
                if t._retains_grad and captured is None:
                    t.grad = g if create_graph else _make(g.data.copy(), False, None)
                # Any: a user's vjp may return a list or a lone gradient, and mypy cannot narrow on
                # the exact-class test below (kept over isinstance for speed); normalised to a tuple
                grads: Any = fn.vjp(g)
                if grads.__class__ is not tuple:
                    grads = tuple(grads) if isinstance(grads, list) else (grads,)
                if len(grads) != n:
                    raise RuntimeError(
                        f"{fn.name}.vjp returned {len(grads)} gradients for {n} inputs; "
                        "return one per positional input, None where there is none"
                    )
                gdata = g.data
                # the same array handed to two inputs is owned by neither
                shared = n > 1 and (
                    grads[0] is grads[1] if n == 2 else len(set(map(id, grads))) < n
                )
            else:
                grads = (None,) * n
                gdata = None
                shared = True
            if not retain_graph:
                fn.inputs = None
                if fn.saved:
                    fn.saved = ()
                fn.released = True
            gp: Tensor | None
            for p, need, gp in zip(inputs, needs, grads, strict=True):  # type: ignore[arg-type]
                if not need:
                    continue
                pk = id(p)
                if gp is not None:
                    d = gp.data
                    pd = p.data
                    if d.shape != pd.shape:
                        gp = unbroadcast(gp, pd.shape)
                        d = gp.data
                    if d.dtype is not pd.dtype and d.dtype != pd.dtype:
                        gp = gp.astype(pd.dtype)
                        d = gp.data
                left = deps[pk] - 1
                deps[pk] = left
                entry = table.get(pk)
                if entry is None:
                    if gp is None:
                        if not left:
                            ready.append((p, None, False))
                        continue
                    fresh = not shared and d is not gdata and d.base is None
                    if not left:  # the only or last contribution: straight to ready
                        ready.append((p, gp, fresh))
                    else:
                        table[pk] = [gp, fresh]
                    continue
                if gp is not None:
                    prev = entry[0]
                    if create_graph:
                        entry[0] = prev + gp
                    elif entry[1]:
                        np.add(prev.data, d, out=prev.data)
                    else:
                        entry[0] = _make(_added(prev.data, d), False, None)
                        entry[1] = True
                if not left:
                    del table[pk]
                    ready.append((p, entry[0], entry[1]))
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
        leaf.grad = _make(_added(leaf.grad.data, g.data), False, None)


def backward(
    tensor: Tensor,
    gradient: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
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
        gos: list[Any] = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
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
    root_grads = [_root_gradient(o, g) for o, g in zip(outs, gos, strict=True)]
    result = run_backward(outs, root_grads, retain_graph, create_graph, capture=ins)
    assert result is not None
    for i, r in enumerate(result):
        if r is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {ins[i].shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return tuple(result)
