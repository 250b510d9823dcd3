"""Version counters: how often a tensor's memory was changed in place, and backward's check with them.

Versions belong to memory, not to Tensor objects: a tensor, its views (reshape, transpose, basic
indexing, ``detach``) and arrays an op saved from it share one counter, as PyTorch's views share
theirs. Writing through ``t.data`` with NumPy bumps nothing (PyTorch's ``.data`` escape hatch).

A counter lives in a table keyed by the array that owns the memory and exists only once that memory
has been changed in place, so recording an op pays nothing. Each change also takes a stamp from the
counter that numbers recorded ops (``Function.seq``): "changed after node N was recorded" is
``stamp > N.seq``, and a node recorded after the last change anywhere (``last_stamp``) cannot have
seen one. Backward therefore looks closer only at nodes older than ``last_stamp``: one comparison
per node on the common path. See docs/derivations.md#in-place-operations.
"""

from __future__ import annotations

import itertools
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # this module imports nothing of nnet's: the engine and Function both need it
    from nnet.autograd.function import Function
    from nnet.autograd.tensor import Tensor

#: Numbers recorded ops (``Function.seq``) and in-place changes alike, in the order they happen.
next_seq = itertools.count().__next__

#: The stamp of the latest in-place change anywhere (-1: none yet); read once per backward.
last_stamp = -1

_KEPT_STAMPS = 64  # stamps kept per memory block: enough to say which version a node saw


class _Entry:
    __slots__ = ("ref", "stamps", "version")

    def __init__(self, ref: weakref.ReferenceType[np.ndarray]) -> None:
        self.ref = ref
        self.version = 0
        self.stamps: list[int] = []


_table: dict[int, _Entry] = {}


def _owner(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (NumPy collapses chains of views, but not always)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _forget(key: int, ref: weakref.ReferenceType[np.ndarray]) -> None:
    entry = _table.get(key)
    if entry is not None and entry.ref is ref:
        del _table[key]


def _entry(a: np.ndarray) -> _Entry | None:
    owner = _owner(a)
    entry = _table.get(id(owner))
    return entry if entry is not None and entry.ref() is owner else None


def bump(a: np.ndarray) -> None:
    """Record that the memory under ``a`` was changed in place (every in-place op calls this).

    >>> import numpy as np
    >>> a = np.zeros(3)
    >>> bump(a[1:]); version(a)
    1
    """
    global last_stamp
    owner = _owner(a)
    key = id(owner)
    entry = _table.get(key)
    if entry is None or entry.ref() is not owner:
        entry = _table[key] = _Entry(weakref.ref(owner, partial(_forget, key)))
    entry.version += 1
    stamp = next_seq()
    entry.stamps.append(stamp)
    if len(entry.stamps) > 2 * _KEPT_STAMPS:
        del entry.stamps[:_KEPT_STAMPS]
    last_stamp = stamp


def version(a: np.ndarray) -> int:
    """How many in-place changes the memory under ``a`` has seen (``Tensor._version``)."""
    entry = _entry(a)
    return 0 if entry is None else entry.version


def _seen_version(arr: Any, seq: int) -> tuple[int, int | None] | None:
    """(version now, version when node ``seq`` was recorded) if ``arr``'s memory changed since."""
    if not isinstance(arr, np.ndarray):
        return None
    entry = _entry(arr)
    if entry is None or entry.stamps[-1] < seq:
        return None
    later = sum(s > seq for s in entry.stamps)
    # once stamps were dropped, a node older than all kept ones only knows "at most"
    known = later < len(entry.stamps) or len(entry.stamps) == entry.version
    return entry.version, (entry.version - later if known else None)


def _read_inputs(fn: Function, inputs: tuple[Any, ...], tensor: type) -> list[int]:
    """Positions of the inputs whose values ``fn``'s VJP reads (class attribute ``saved_inputs``)."""
    which = fn.saved_inputs
    positions = [i for i, x in enumerate(inputs) if isinstance(x, tensor)]
    if which == "none":
        return []
    if which == "others":  # input i is read only for another input's gradient
        needs = fn.needs_input_grad
        return [i for i in positions if any(n for j, n in enumerate(needs) if j != i)]
    return positions


def _describe(t: Any, role: str, seq: int) -> str:
    """``input 0 'h' (shape (3,) float32, made by Mul)``: the role, the tensor's name when it has
    one, its shape and dtype, and what made the version that node ``seq`` saw."""
    name = getattr(t, "name", None)
    label = f"{role} {name!r}" if isinstance(name, str) else role
    arr = np.asarray(getattr(t, "data", t))
    origin = ""
    if hasattr(t, "grad_fn"):
        fn = _as_seen(t, seq).grad_fn
        origin = ", a leaf" if fn is None else f", made by {fn.name}"
    return f"{label} (shape {arr.shape} {arr.dtype}{origin})"


def _changed_error(fn: Function, what: str, now: int, then: int | None) -> RuntimeError:
    seen = f"version {then}" if then is not None else f"an earlier version (at most {now - 1})"
    return RuntimeError(
        f"backward: {what}, which {fn.name} saved for its gradient, was changed by an in-place "
        f"operation after {fn.name} was recorded: it is at version {now}, {fn.name} saw {seen}. "
        "Its gradient would use the new values. Use the out-of-place form (t = t + u rather "
        "than t += u), or make the change after backward(). An optimizer step between two "
        "backward passes over one graph is this case too: run the forward again after the step"
    )


def check_node(fn: Function, inputs: tuple[Any, ...], out: Tensor | None = None) -> tuple[Any, ...]:
    """Backward's check of a node recorded before the latest in-place change (the rare path).

    Raises if a value the VJP reads (an input it saves, its output, an array in ``ctx.saved``) was
    changed in place since ``fn`` was recorded. Returns the inputs with every tensor whose history
    an in-place op rebased since then replaced by the tensor it was when ``fn`` used it, so the
    gradient reaches that version's history. ``out`` is ``fn``'s output (for the view check).
    """
    from nnet.autograd.tensor import Tensor  # here: the module imports nothing of nnet's at load

    seq = fn.seq
    for i in _read_inputs(fn, inputs, Tensor):
        changed = _seen_version(inputs[i].data, seq)
        if changed is not None:
            raise _changed_error(fn, _describe(inputs[i], f"input {i}", seq), *changed)
    if fn.saves_output and fn._output is not None:
        out = fn._output()
        changed = None if out is None else _seen_version(out.data, seq)
        if changed is not None:
            raise _changed_error(fn, _describe(out, "its output", seq), *changed)
    for k, value in enumerate(fn.saved):
        changed = _seen_version(getattr(value, "data", value), seq)
        if changed is not None:
            raise _changed_error(fn, _describe(value, f"saved value {k}", seq), *changed)
    seen = tuple([_as_seen(x, seq) if isinstance(x, Tensor) else x for x in inputs])
    if out is not None:
        _check_views(fn, inputs, seen, out)
    return seen


def _check_views(fn: Function, inputs: tuple[Any, ...], seen: tuple[Any, ...], out: Any) -> None:
    """A view taken before its base was changed by a recorded in-place op shows the new values with
    the old history: PyTorch rebuilds the view's history; nnet refuses."""
    for x, s in zip(inputs, seen, strict=True):
        if s is not x and np.may_share_memory(x.data, out.data):
            raise RuntimeError(
                f"backward: a view made by {fn.name} of a tensor that an in-place op changed "
                f"afterwards (shape {x.data.shape}, now made by {x.grad_fn.name}) shares that "
                "tensor's memory, so it shows the new values, but its history is the old one. "
                f"Take the view ({fn.name}) after the in-place change, or use the out-of-place form"
            )


def _as_seen(t: Tensor, seq: int) -> Tensor:
    """The version of ``t`` that node ``seq`` consumed: follow in-place nodes back past ``seq``."""
    fn = t.grad_fn
    while fn is not None and fn.seq > seq:  # only an in-place op can make an input newer
        t = fn.prior
        fn = t.grad_fn
    return t
