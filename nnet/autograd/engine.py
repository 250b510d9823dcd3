"""Reverse-mode traversal: an iterative topological walk with dependency counts, never recursion.

The walk first counts, for every tensor reachable from the roots, how many recorded operations consume it;
then it runs VJPs in an order where a tensor's gradient is complete (all consumers done) before its own
VJP runs. Gradients live in a table keyed by tensor id and leave it as soon as they are used. The first
contribution is kept without a copy; a second is added into a fresh buffer, later ones in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any

import numpy as np

from nnet.autograd import leaf_hooks, tensor_hooks, version
from nnet.autograd.defaults import teaching_enabled
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.lifetime import on_backward, spans_a_step
from nnet.autograd.sketch import KEEP, SMALL, note_leaf, sketched
from nnet.autograd.tensor import HOOKS, RETAIN, Tensor, _as_array
from nnet.autograd.unbroadcast import unbroadcast, unbroadcast_array

if TYPE_CHECKING:
    from nnet.autograd.function import Function

_make = Tensor._make
_EVERYTHING = 2**62  # teaching mode's size and count limits of what backward keeps for drawings
_ndarray = np.ndarray  # type(x) is _ndarray: the cheapest exact-class test in the hot loops


def _added(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` as an array: NumPy gives a scalar for two 0-d arrays, which can't be added into."""
    out = a + b
    return out if type(out) is _ndarray else np.asarray(out)


class GraphReleasedError(RuntimeError):
    """Backward reached an operation whose saved arrays were already released."""


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


def _vjp_shape_error(fn: Function, inputs: Any, p: Tensor, gshape: tuple[int, ...]) -> RuntimeError:
    """A gradient that no sum over broadcast axes can fit to its input, naming the Function."""
    k = next(k for k, x in enumerate(inputs) if x is p)
    return RuntimeError(
        f"{fn.name}.vjp returned a gradient of shape {gshape} for input {k}, which has shape "
        f"{p.data.shape}; a VJP returns one gradient per input, of that input's shape (or a shape "
        "that broadcasts to it, which the engine sums back)"
    )


def _released(fn: Function) -> GraphReleasedError:
    return GraphReleasedError(
        f"backward through {fn.name} a second time: its saved arrays were released by the "
        "first backward. Pass retain_graph=True to the first backward (or to nnet.grad) "
        "if you need to backpropagate through the same graph again"
    )


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Propagate ``root_grads`` from ``roots``. With ``capture``, return the gradients of those tensors
    instead of accumulating into leaves' ``.grad``.

    Order: every recorded op carries a sequence number from a global counter, so an op's number is
    larger than those of the ops that made its inputs. The walk takes the pending tensor whose op has
    the largest number (a heap): all its consumers have run, so its gradient is complete. This is
    PyTorch's order too, and it needs no pass over the graph to count consumers first. In a chain the
    next op is known without the heap: the first input an op gives a gradient to runs right after it
    when no pending op is newer (the heap would pop it next anyway), without entering the table.

    A pending gradient sits in ``table`` under its tensor's id as ``[gradient, owned, tensor]``;
    ``owned`` marks an array nobody else can see, which may be added to in place. Holding the tensor
    keeps its id from being reused while it is a key. Leaves stay in the table to the end. Without
    create_graph the gradients are plain arrays and each op runs ``vjp_arrays``; with it, tensors and
    ``vjp``, so the gradients are recorded and can be differentiated again.

    A node recorded before the latest in-place change anywhere (``version.last_stamp``) goes through
    ``version.check_node`` first (values it saved changed? inputs rebased since?); the rest pay one
    comparison.

    For drawings, the :data:`~nnet.autograd.sketch.KEEP` ops nearest the roots keep
    ``fn.drawn_grad`` (their output's gradient when small) and, when released, ``fn.drawn_inputs``
    (their inputs without the big ones); each root's op keeps ``drawn_record``, each leaf's gradient
    as this backward left it (sketch.py). In teaching mode nothing is too big and every op keeps
    them.
    """
    table: dict[int, list[Any]] = {}
    heap: list[tuple[int, Tensor]] = []
    for r, rg in zip(roots, root_grads, strict=True):
        k = id(r)
        g: Any = rg if create_graph else rg.data
        entry = table.get(k)
        if entry is not None:
            entry[0] = entry[0] + g if create_graph else _added(entry[0], g)
            entry[1] = not create_graph
            continue
        table[k] = [g, False, r]
        fn = r.grad_fn
        if fn is not None:
            if fn.inputs is None:
                raise _released(fn)
            heap.append((-fn.seq, r))
    heapify(heap)
    captured: dict[int, Tensor] | None = None
    wanted: set[int] = set()
    if capture is not None:
        captured = {}
        wanted = {id(t) for t in capture}
    hooked = captured is None and leaf_hooks.any_hooks()
    record: dict[int, Any] = {}
    small, keep = (_EVERYTHING, _EVERYTHING) if teaching_enabled.get() else (SMALL, KEEP)
    token = grad_enabled.set(create_graph)
    try:
        last_change = version.last_stamp
        newest = -heap[0][0] if heap else 0
        if create_graph:
            oldest = _walk_tensors(
                heap, table, retain_graph, captured, wanted, last_change, small, keep
            )
        else:
            # hooked leaves are finished as soon as their last gradient arrives (leaf_hooks.py)
            counts = leaf_hooks.hooked_edge_counts(roots) if hooked else None
            oldest = _walk_arrays(
                heap,
                table,
                retain_graph,
                captured,
                wanted,
                last_change,
                small,
                keep,
                record,
                counts,
            )
    finally:
        grad_enabled.reset(token)
    if oldest is not None and spans_a_step(oldest.seq, newest):
        on_backward()
    for r in roots:
        if r.grad_fn is not None:
            r.grad_fn.drawn_record = record
    # what is left are the leaves, each gradient complete
    for g, own, t in table.values():
        if t._retains_grad:  # a leaf's hooks (retain_grad does nothing on a leaf)
            if create_graph:
                g = _attend_tensor(t, g, False)
            else:
                g, own = _attend_array(t, g, own, False)
        if captured is None:
            _accumulate_leaf(t, g, own, create_graph)
            note_leaf(record, t)
            if hooked:
                leaf_hooks.run(t)
        elif id(t) in wanted:
            captured[id(t)] = g if create_graph else _make(g if own else g.copy(), False, None)
    if captured is None:
        if leaf_hooks._at_end:
            leaf_hooks.run_backward_end(record.keys())  # every leaf given a gradient, early or now
        return None
    return [captured.get(id(t)) for t in capture]  # type: ignore[union-attr]


def _checked(fn: Function, grads: Any) -> tuple[Any, ...]:
    """A VJP's result as a tuple of one gradient per input: a user's VJP may return a list or a lone
    gradient."""
    if grads.__class__ is not tuple:
        grads = tuple(grads) if isinstance(grads, list) else (grads,)
    n = len(fn.needs_input_grad)
    if len(grads) != n:
        raise RuntimeError(
            f"{fn.name}.vjp returned {len(grads)} gradients for {n} inputs; "
            "return one per positional input, None where there is none"
        )
    return grads


def _walk_arrays(
    heap: list[tuple[int, Tensor]],
    table: dict[int, list[Any]],
    retain_graph: bool,
    captured: dict[int, Tensor] | None,
    wanted: set[int],
    last_change: int,
    small: int,
    keep: int,
    record: dict[int, Any],
    counts: dict[int, int] | None = None,
) -> Function | None:
    """The walk of a backward that records nothing: gradients are arrays, VJPs ``vjp_arrays``.
    ``small``, ``keep``: what is kept for drawings (see :func:`run_backward`). ``counts``: the edges
    still to arrive at each hooked leaf (see :func:`_arrived`). Returns the last op run, the oldest
    (for the graph-lifetime check)."""
    fn: Any = None  # after the loop: the last op run
    t: Any = None  # the tensor to run next when known without the heap (see below)
    while True:
        if t is None:
            if not heap:
                break
            t = heappop(heap)[1]
            g, own, _ = table.pop(id(t))
        k = id(t)
        if t._retains_grad:  # retain_grad() or register_hook() on this tensor
            g, own = _attend_array(t, g, own, captured is None)
        if captured is not None and k in wanted:
            captured[k] = _make(g if own else g.copy(), False, None)
        fn = t.grad_fn  # only tensors with an op are pushed
        inputs = fn.inputs
        if inputs is None:
            raise _released(fn)
        if fn.seq < last_change:  # something changed in place since fn was recorded: look closer
            inputs = version.check_node(fn, inputs, t)
        needs = fn.needs_input_grad
        grads: Any = fn.vjp_arrays(g)
        n = len(needs)
        if type(grads) is not tuple or len(grads) != n:
            grads = _checked(fn, grads)
        # the same array handed to two inputs is owned by neither
        shared = n > 1 and (grads[0] is grads[1] if n == 2 else len(set(map(id, grads))) < n)
        if keep:  # _keep_for_drawing written out: this runs on every op
            keep -= 1
            if g.size <= small:
                fn.drawn_grad = g
                if not retain_graph:
                    fn.drawn_inputs = inputs if fn.elementwise else sketched(inputs, small)
            else:
                fn.drawn_grad = None
                if not retain_graph:
                    fn.drawn_inputs = sketched(inputs, small)
        if not retain_graph:
            fn.inputs = None
            if fn.saved:
                fn.saved = ()
        # The first input to start pending is held here, out of the table and the heap: in a
        # chain it is the next op to run (see the end of the loop).
        t = None
        tg: Any = None
        town = False
        for p, need, d in zip(inputs, needs, grads, strict=False):  # lengths checked above
            if d is None or not need:
                if need and counts is not None:
                    _arrived(p, counts, table, record)
                continue
            if type(d) is not _ndarray:  # NumPy gives scalars for 0-d operands
                d = np.asarray(d)
            pd = p.data
            if d.shape != pd.shape:
                try:
                    d = unbroadcast_array(d, pd.shape)
                except RuntimeError:
                    raise _vjp_shape_error(fn, inputs, p, d.shape) from None
            if d.dtype is not pd.dtype and d.dtype != pd.dtype:
                d = d.astype(pd.dtype)
            if p is t:  # the held input again (x * x)
                if town:
                    np.add(tg, d, out=tg)
                else:
                    tg, town = _added(tg, d), True
                continue
            pk = id(p)
            entry = table.get(pk)
            if entry is None:
                owned = not shared and d is not g and d.base is None
                pfn = p.grad_fn
                if pfn is None:
                    table[pk] = [d, owned, p]
                elif t is None:
                    t, tg, town = p, d, owned
                else:
                    table[pk] = [d, owned, p]
                    heappush(heap, (-pfn.seq, p))
            elif entry[1]:
                np.add(entry[0], d, out=entry[0])
            else:
                entry[0] = _added(entry[0], d)
                entry[1] = True
            if counts is not None:
                _arrived(p, counts, table, record)
        if t is not None:
            seq = t.grad_fn.seq
            if heap and heap[0][0] < -seq:  # a newer op waits: the held input waits its turn
                table[id(t)] = [tg, town, t]
                heappush(heap, (-seq, t))
                t = None
            else:  # the heap would pop it next anyway: its gradient is complete
                g, own = tg, town
    return fn


def _keep_for_drawing(
    fn: Function, inputs: tuple[Any, ...], g: np.ndarray, small: int, retain_graph: bool
) -> None:
    """What a drawing needs of ``fn`` (sketch.py): its output's gradient ``g`` when small; its
    inputs once released, the same tuple when none is big. An elementwise op's inputs are no bigger
    than its output, so a small gradient says they are all small without looking at them."""
    if g.size <= small:
        fn.drawn_grad = g
        if not retain_graph:
            fn.drawn_inputs = inputs if fn.elementwise else sketched(inputs, small)
    else:
        fn.drawn_grad = None
        if not retain_graph:
            fn.drawn_inputs = sketched(inputs, small)


def _arrived(
    p: Tensor, counts: dict[int, int], table: dict[int, list[Any]], record: dict[int, Any]
) -> None:
    """One more edge has delivered to ``p``; if ``p`` is a hooked leaf and that was its last, its
    gradient is final: into ``.grad`` now, and its hooks run while the walk goes on."""
    k = id(p)
    n = counts.get(k)
    if n is None:
        return
    if n > 1:
        counts[k] = n - 1
        return
    del counts[k]
    entry = table.pop(k, None)
    if entry is not None:  # else every edge gave None: nothing accumulates, no hook runs
        if p._retains_grad:
            entry[0], entry[1] = _attend_array(p, entry[0], entry[1], False)
        _accumulate_leaf(p, entry[0], entry[1], False)
        note_leaf(record, p)
        leaf_hooks.run(p)


def _walk_tensors(
    heap: list[tuple[int, Tensor]],
    table: dict[int, list[Any]],
    retain_graph: bool,
    captured: dict[int, Tensor] | None,
    wanted: set[int],
    last_change: int,
    small: int,
    keep: int,
) -> Function | None:
    """The walk under ``create_graph``: gradients are tensors and every VJP is recorded. Nothing is
    added in place (the new graph may hold any of them). Returns the last (oldest) op run."""
    fn: Any = None  # after the loop: the last op run
    while heap:
        t = heappop(heap)[1]
        k = id(t)
        g = table.pop(k)[0]
        if t._retains_grad:  # retain_grad() or register_hook() on this tensor
            g = _attend_tensor(t, g, captured is None)
        if captured is not None and k in wanted:
            captured[k] = g  # the graph's own tensor, never a copy
        fn = t.grad_fn  # only tensors with an op are pushed
        inputs = fn.inputs
        if inputs is None:
            raise _released(fn)
        if fn.seq < last_change:  # something changed in place since fn was recorded: look closer
            inputs = version.check_node(fn, inputs, t)
        grads = _checked(fn, fn.vjp(g))
        if keep:
            keep -= 1
            _keep_for_drawing(fn, inputs, g.data, small, retain_graph)
        if not retain_graph:
            fn.inputs = None
            if fn.saved:
                fn.saved = ()
        gp: Tensor | None
        for p, need, gp in zip(inputs, fn.needs_input_grad, grads, strict=True):
            if gp is None or not need:
                continue
            pd = p.data
            if gp.data.shape != pd.shape:
                try:
                    gp = unbroadcast(gp, pd.shape)
                except RuntimeError:
                    raise _vjp_shape_error(fn, inputs, p, gp.data.shape) from None
            if gp.data.dtype != pd.dtype:
                gp = gp.astype(pd.dtype)
            pk = id(p)
            entry = table.get(pk)
            if entry is None:
                table[pk] = [gp, False, p]
                pfn = p.grad_fn
                if pfn is not None:
                    heappush(heap, (-pfn.seq, p))
            else:
                entry[0] = entry[0] + gp
    return fn


def _attend_array(t: Tensor, g: np.ndarray, own: bool, store: bool) -> tuple[np.ndarray, bool]:
    """A complete gradient (an array) of a tensor with hooks or ``retain_grad``: through the hooks,
    then a copy into ``.grad`` if it retains it and ``store`` (``nnet.grad`` leaves ``.grad`` alone)."""
    flags = t._retains_grad
    if flags & HOOKS:
        out = tensor_hooks.run(t, _make(g, False, None)).data
        if out is not g:  # the hook's own tensor: not ours to add into
            g, own = out, False
    if flags & RETAIN and store:
        t.grad = _make(g.copy(), False, None)
    return g, own


def _attend_tensor(t: Tensor, g: Tensor, store: bool) -> Tensor:
    """:func:`_attend_array` under ``create_graph``: the gradient is a recorded tensor."""
    flags = t._retains_grad
    if flags & HOOKS:
        g = tensor_hooks.run(t, g)
    if flags & RETAIN and store:
        t.grad = g
    return g


def _accumulate_leaf(leaf: Tensor, g: Any, owned: bool, create_graph: bool) -> None:
    if create_graph:  # g is a tensor of the new graph
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    elif leaf.grad is None:
        leaf.grad = _make(g if owned else g.copy(), False, None)
    else:
        leaf.grad = _make(_added(leaf.grad.data, g), False, None)


def retain_every_grad(root: Tensor) -> None:
    """Teaching mode's backward leaves every intermediate tensor's gradient in its ``.grad``
    (``retain_grad``), as micrograd does. A walk over the graph before backward: teaching mode only."""
    stack, seen = [root], set()
    while stack:
        t = stack.pop()
        fn = t.grad_fn
        if fn is None or id(fn) in seen or fn.inputs is None:
            continue
        seen.add(id(fn))
        t._retains_grad = t._retains_grad | RETAIN  # keeps a HOOKS bit
        stack.extend(x for x in fn.inputs if isinstance(x, Tensor))


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
    if teaching_enabled.get():
        retain_every_grad(tensor)
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
