"""A group's parameters updated together, as PyTorch's ``foreach`` optimizers do: one flat array per
state buffer, and each NumPy pass of the update run once over all the parameters.

An elementwise update (Adam's moments and step, SGD's momentum) is a dozen NumPy calls per
parameter, each a microsecond or two of overhead however few its elements, and a network has many
small parameters (the seed CNN: 12 parameters, 11 of them under 2,000 elements). Here the moments
of all of a group's parameters of one dtype live in one flat array per state entry (each
parameter's ``state`` entry, ``exp_avg`` ..., is a view of it, so ``state`` and ``state_dict`` look
as before), the gradients are read as one flat array, the update runs once over them, and each
parameter is finally moved by its slice of the flat step (``p -= step``, one call per parameter: the
parameters keep their own arrays, which users and kernels may hold).

The gradients are copied into a flat array (one ``np.concatenate``), unless they already lie in one:
``DistributedDataParallel`` hands out each ``.grad`` as a view of its bucket's buffer and declares it
with :func:`share_gradients`; the parameters are then laid out in that buffer's order and the update
reads the buffer itself. Large parameters (above :data:`FLAT_MAX_ELEMENTS`) join only then: gathering
their gradients would cost more than their calls. When the ranks of one machine declare their buffer
with a :class:`Shard` (``nnet.distributed.zero``), the state entries and the step are shared flat
arrays and each rank updates its part of them (ZeRO stage 1); the step is the same to the bit.

The flat arrays serve while nothing changes: the same parameters (with gradients) and arrays, the
state entries still the views, one step count. When the entries are replaced (``load_state_dict``)
or the parameters with a gradient change, the flat arrays are built again from the current state;
parameters that cannot share them (step counts that differ, another dtype, a non-contiguous array, a
gradient of another dtype or shape) are updated one at a time. The arithmetic is elementwise, so the
result is the same to the bit either way.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from nnet.autograd.tensor import Tensor
from nnet.autograd.version import bump

#: Updates run over flat arrays when this is true (tests switch it off to compare with one at a time).
ENABLED = True

#: Parameters of more elements join the flat arrays only when their gradients lie in a declared
#: buffer: gathering a large gradient costs a pass of its own, and the copy grows the update's
#: working set past the L2 cache (the MLP's 784 x 256 weight: Adam 0.44 -> 0.51 ms), while its
#: dozen calls are not worth saving.
FLAT_MAX_ELEMENTS = 2**14


class Shard(Protocol):
    """Processes that update the parameters of a declared buffer together, each its ``part``
    (a range of the flat arrays' elements): ``arrays`` gives an optimizer flat arrays that all of
    them share (its state entries, then the step), ``meet`` waits until each has written its part.
    """

    part: tuple[int, int]

    def arrays(self, owner: Any, count: int) -> list[np.ndarray] | None: ...

    def meet(self) -> None: ...


# id(buffer) -> weak references to the buffer and to its declared views, in order, and its shard
# (share_gradients)
_shared: dict[
    int,
    tuple[weakref.ReferenceType[np.ndarray], list[weakref.ReferenceType[np.ndarray]], Shard | None],
] = {}


def share_gradients(
    buffer: np.ndarray, views: list[np.ndarray], shard: Shard | None = None
) -> None:
    """Declare that ``views``, consecutive slices of the flat ``buffer`` in this order that tile it,
    are (about to be) parameters' ``.grad`` arrays, so that an optimizer reads ``buffer`` instead of
    copying them into one (DistributedDataParallel's buckets); with ``shard``, the processes that
    hold the same gradients split the update (every one of them then steps the optimizer). Held
    weakly: forgotten when ``buffer`` is freed."""
    key = id(buffer)

    def forget(_: object) -> None:
        _shared.pop(key, None)

    _shared[key] = (weakref.ref(buffer, forget), [weakref.ref(v) for v in views], shard)


def _declared(
    array: np.ndarray,
) -> tuple[np.ndarray | None, list[np.ndarray | None], Shard | None]:
    """The declared buffer that ``array`` is a view of, its views in order and its shard (None,
    [], None if none)."""
    base = array.base
    entry = _shared.get(id(base)) if base is not None else None
    if entry is None or entry[0]() is not base:
        return None, [], None
    return base, [r() for r in entry[1]], entry[2]


_NONE = np.empty(0)


@dataclass(eq=False)
class Flat:
    """The flat arrays of one group's parameters of one dtype (``params`` in the group's order).

    ``spans[i]`` is parameter i's slice of every flat array; ``order`` lists the parameters in the
    order of the flat arrays. ``buffers[key]`` holds state entry ``key`` of all of them and
    ``views[key][i]`` is parameter i's entry, a view of it. ``g`` gathers the gradients when they do
    not lie in a declared buffer (``in_shared``: laid out as one was when these were built);
    ``tmp`` is scratch, ``tmp_views[i]`` its slice shaped like parameter i. ``fresh``: no parameter
    had state when these were built, and no update has run since. With a ``shard``, the buffers
    and ``out`` (where the step goes, else ``tmp``) are shared with the other processes, and this
    one updates the elements ``part`` of them.
    """

    params: tuple[Tensor, ...]
    arrays: tuple[np.ndarray, ...]
    dtype: np.dtype
    spans: list[tuple[int, int]]
    order: list[int]
    keys: tuple[str, ...]
    fresh: bool
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    views: dict[str, list[np.ndarray]] = field(default_factory=dict)
    g: np.ndarray = field(default_factory=lambda: _NONE)
    tmp: np.ndarray = field(default_factory=lambda: _NONE)
    tmp_views: list[np.ndarray] = field(default_factory=list)
    in_shared: bool = False
    shard: Shard | None = None
    part: tuple[int, int] = (0, 0)
    out: np.ndarray = field(default_factory=lambda: _NONE)
    out_views: list[np.ndarray] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Elements in each flat array."""
        return self.tmp.size

    def serves(
        self, params: list[Tensor], states: list[dict[str, Any]], keys: tuple[str, ...]
    ) -> bool:
        """Whether these arrays still serve ``params`` with their ``states``: the same tensors
        (by identity: a tensor's == is elementwise) and arrays, the state entries still the views,
        one step count."""
        if keys != self.keys or len(params) != len(self.params):
            return False
        for p, q, a in zip(params, self.params, self.arrays, strict=True):
            if p is not q or p.data is not a:
                return False
        step = states[0].get("step")
        if any(st.get("step") != step for st in states):
            return False
        return all(
            st.get(k) is v for k in keys for st, v in zip(states, self.views[k], strict=True)
        )

    def gradients(self) -> np.ndarray | None:
        """The parameters' gradients as one flat array in this layout (the shared buffer itself
        when they are its views, else gathered into ``g``); None when one cannot take part (missing,
        another dtype or shape)."""
        grads = []
        for p in self.params:
            g = p.grad
            if g is None:
                return None
            a = g.data
            if a.dtype != self.dtype or a.shape != p.data.shape:
                return None
            grads.append(a)
        if self.in_shared:
            base, views, _ = _declared(grads[0])
            if base is not None and len(views) == len(grads):
                if all(grads[i] is v for i, v in zip(self.order, views, strict=True)):
                    return base
        np.concatenate([grads[i].reshape(-1) for i in self.order], out=self.g)
        return self.g

    def params_times(self, factor: float, out: list[np.ndarray]) -> None:
        """Each parameter times ``factor`` into its slice ``out[i]`` (parameter-shaped views)."""
        for p, o in zip(self.params, out, strict=True):
            np.multiply(p.data, factor, out=o)

    def scale_params(self, factor: float) -> None:
        """Each parameter times ``factor``, in place."""
        for p in self.params:
            np.multiply(p.data, factor, out=p.data)

    def subtract(self, step: np.ndarray, start: int = 0, stop: int | None = None) -> None:
        """Each parameter minus its slice of the flat ``step`` (``tmp``), for the flat elements
        ``start:stop`` (all by default)."""
        if start == 0 and (stop is None or stop == self.size):
            for p, view in zip(self.params, self.tmp_views, strict=True):
                np.subtract(p.data, view, out=p.data)
            return
        for p, (a, b) in zip(self.params, self.spans, strict=True):
            lo, hi = max(a, start), min(b, stop if stop is not None else self.size)
            if lo < hi:
                own = p.data.reshape(-1)  # a view: the parameters are contiguous
                np.subtract(own[lo - a : hi - a], step[lo:hi], out=own[lo - a : hi - a])

    def finish(self) -> None:
        """With a shard: wait until every process has written its part of the step into ``out``,
        then move each parameter by its slice of the whole step."""
        assert self.shard is not None
        self.shard.meet()
        for p, view in zip(self.params, self.out_views, strict=True):
            np.subtract(p.data, view, out=p.data)

    def bump(self) -> None:
        """Record that every parameter changed in place (a graph that saved one can't backward)."""
        for p in self.params:
            bump(p.data)


def ready(cached: Flat | None, params: list[Tensor], states: list[dict[str, Any]],
          keys: tuple[str, ...], owner: Any = None) -> Flat | None:  # fmt: skip
    """Flat arrays for ``params`` (parameters with a gradient, all of one dtype) and their
    ``states``: ``cached`` when it still serves, else new ones, or None when they cannot share any;
    ``owner``: the optimizer, which may split its update over a shard (see :func:`build`)."""
    if cached is not None and cached.serves(params, states, keys):
        return cached
    return build(params, states, keys, owner) if eligible(params, states, keys) else None


def eligible(params: list[Tensor], states: list[dict[str, Any]], keys: tuple[str, ...]) -> bool:
    """Parameters that can share flat arrays: one float dtype, contiguous arrays, gradients of
    their dtype and shape, the same step count, and each state entry of ``keys`` present in all of
    their states or in none."""
    dtype = params[0].data.dtype
    if dtype.kind != "f":
        return False
    for p in params:
        g = p.grad
        if p.data.dtype != dtype or not p.data.flags.c_contiguous or g is None:
            return False
        if g.data.dtype != dtype or g.data.shape != p.data.shape:
            return False
    if len({st.get("step", 0) for st in states}) != 1:
        return False
    return all(len({k in st for st in states}) == 1 for k in keys)


def build(params: list[Tensor], states: list[dict[str, Any]], keys: tuple[str, ...],
          owner: Any = None) -> Flat:  # fmt: skip
    """Flat arrays for ``params``, filled from their current state (zeros where there is none), the
    state entries replaced by views of them; laid out in the order of the gradients' shared buffer
    when they lie in one (see :func:`share_gradients`), and, when that buffer has a shard that
    gives ``owner`` its arrays, made of those (this process fills only its part of them)."""
    order = list(range(len(params)))
    in_shared = False
    shard = None
    grads = [p.grad.data if p.grad is not None else None for p in params]
    if grads[0] is not None:
        _, declared, shard = _declared(grads[0])
        where = {id(v): j for j, v in enumerate(declared) if v is not None}
        if len(where) == len(params) and all(g is not None and id(g) in where for g in grads):
            order.sort(key=lambda i: where[id(grads[i])])
            in_shared = True
    spans = [(0, 0)] * len(params)
    total = 0
    for i in order:
        spans[i] = (total, total + params[i].data.size)
        total += params[i].data.size
    dtype = params[0].data.dtype
    fresh = not any(k in st for k in keys for st in states)
    f = Flat(tuple(params), tuple(p.data for p in params), dtype, spans, order, keys, fresh,
             in_shared=in_shared, part=(0, total))  # fmt: skip
    shared = None
    if in_shared and shard is not None and owner is not None:
        shared = shard.arrays(owner, len(keys) + 1)
    if shared is not None and shared[0].size == total and shared[0].dtype == dtype:
        f.shard, f.part, f.out = shard, shard.part, shared[-1]  # type: ignore[union-attr]
    lo, hi = f.part
    for k, key in enumerate(keys):
        buf = np.zeros(total, dtype)
        views = []
        for p, st, (a, b) in zip(params, states, spans, strict=True):
            if key in st:
                np.copyto(buf[a:b].reshape(p.data.shape), st[key])
        if f.shard is not None:  # only this process's part: the others write theirs
            shared[k][lo:hi] = buf[lo:hi]  # type: ignore[index]
            buf = shared[k]  # type: ignore[index]
        for p, st, (a, b) in zip(params, states, spans, strict=True):
            st[key] = view = buf[a:b].reshape(p.data.shape)
            views.append(view)
        f.buffers[key], f.views[key] = buf, views
    f.g, f.tmp = np.empty(total, dtype), np.empty(total, dtype)
    f.tmp_views = [
        f.tmp[a:b].reshape(p.data.shape) for p, (a, b) in zip(params, spans, strict=True)
    ]
    if f.shard is None:
        f.out, f.out_views = f.tmp, f.tmp_views
    else:
        f.out_views = [
            f.out[a:b].reshape(p.data.shape) for p, (a, b) in zip(params, spans, strict=True)
        ]
    return f


def together(params: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """``params`` split into those to update together and the others: all of them when their
    gradients lie in a declared buffer, else those of at most :data:`FLAT_MAX_ELEMENTS`."""
    g = params[0].grad
    if g is not None and _declared(g.data)[0] is not None:
        return params, []
    small = [p for p in params if p.data.size <= FLAT_MAX_ELEMENTS]
    if len(small) == len(params):
        return params, []
    return small, [p for p in params if p.data.size > FLAT_MAX_ELEMENTS]


def groups_by_dtype(params: list[Tensor]) -> list[list[Tensor]]:
    """``params`` split by dtype, in order of first appearance (usually one list: all float32)."""
    dtype = params[0].data.dtype
    if all(p.data.dtype == dtype for p in params):
        return [params]
    by: dict[np.dtype, list[Tensor]] = {}
    for p in params:
        by.setdefault(p.data.dtype, []).append(p)
    return list(by.values())
