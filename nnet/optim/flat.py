"""Small parameters updated together: one flat array per state buffer, shared by a group's parameters.

An elementwise optimizer (Adam's moments and step) runs a dozen NumPy calls per parameter, each a
microsecond or two of overhead however few its elements: the seed CNN has 12 parameters, 11 of
them under 2,000 elements, and its Adam step took 280-300 us against the NumPy floor's 110 (which
keeps every parameter in one flat buffer). Here the group's small parameters and gradients are
gathered into flat arrays (two ``np.concatenate``), the update runs once over them, and the new
values are copied back: a dozen calls for all of them instead of a dozen each.

The moments live in the flat arrays: each parameter's state entries (``exp_avg`` ...) are views of
them, so ``state_dict`` and the optimizer's ``state`` look as before. When those entries are replaced
(``load_state_dict``), the parameters change, or the step counts differ, the flat arrays are built
again from the current state, or the parameters are updated one at a time as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnet.autograd.tensor import Tensor

#: Parameters of at most this many elements are updated together. Above it the arithmetic
#: dominates the per-call overhead and the gathering copies would only add to it.
FLAT_MAX_ELEMENTS = 2**14


@dataclass
class Flat:
    """The flat arrays of one group's small parameters: ``views[key][i]`` is parameter i's state
    entry ``key``, a view of ``buffers[key]``; ``p``, ``g``, ``tmp`` hold the gathered values."""

    params: tuple[Tensor, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtype: np.dtype
    spans: list[tuple[int, int]]
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    views: dict[str, list[np.ndarray]] = field(default_factory=dict)
    p: np.ndarray = field(default_factory=lambda: np.empty(0))
    g: np.ndarray = field(default_factory=lambda: np.empty(0))
    tmp: np.ndarray = field(default_factory=lambda: np.empty(0))

    def current(
        self, params: list[Tensor], states: list[dict[str, Any]], keys: tuple[str, ...]
    ) -> bool:
        """Whether these arrays still serve ``params`` with their ``states`` (nothing replaced)."""
        if len(params) != len(self.params) or tuple(self.views) != keys:
            return False
        if any(a is not b for a, b in zip(params, self.params, strict=True)):
            return False  # by identity: a tensor's == is elementwise
        if any(
            p.data.shape != s or p.data.dtype != self.dtype
            for p, s in zip(params, self.shapes, strict=True)
        ):
            return False
        return all(
            st.get(k) is v for k in keys for st, v in zip(states, self.views[k], strict=True)
        )


def eligible(params: list[Tensor], states: list[dict[str, Any]]) -> bool:
    """Parameters that can share flat arrays: one float dtype, contiguous values and gradients of
    that dtype, and the same step count (all new, or all updated equally often)."""
    dtype = params[0].data.dtype
    if dtype.kind != "f":
        return False
    for p in params:
        g = p.grad.data if p.grad is not None else None
        if g is None or p.data.dtype != dtype or g.dtype != dtype or g.shape != p.data.shape:
            return False
        if not (p.data.flags.c_contiguous and g.flags.c_contiguous):
            return False
    steps = {st.get("step", 0) for st in states}
    return len(steps) == 1


def build(params: list[Tensor], states: list[dict[str, Any]], keys: tuple[str, ...]) -> Flat:
    """Flat arrays for ``params``, filled from their current state (zeros where there is none), the
    state entries replaced by views of them."""
    shapes = tuple(p.data.shape for p in params)
    spans, total = [], 0
    for p in params:
        spans.append((total, total + p.data.size))
        total += p.data.size
    dtype = params[0].data.dtype
    flat = Flat(tuple(params), shapes, dtype, spans)
    for key in keys:
        buf = np.zeros(total, dtype)
        views = []
        for st, (a, b), shape in zip(states, spans, shapes, strict=True):
            view = buf[a:b].reshape(shape)
            if key in st:
                np.copyto(view, st[key])
            st[key] = view
            views.append(view)
        flat.buffers[key], flat.views[key] = buf, views
    flat.p, flat.g, flat.tmp = (np.empty(total, dtype) for _ in range(3))
    return flat


def gather(flat: Flat) -> None:
    """The parameters' values and gradients into ``flat.p`` and ``flat.g``."""
    np.concatenate([p.data.reshape(-1) for p in flat.params], out=flat.p)
    np.concatenate([p.grad.data.reshape(-1) for p in flat.params], out=flat.g)  # type: ignore[union-attr]


def scatter(flat: Flat) -> None:
    """``flat.p`` back into each parameter's own array."""
    for p, (a, b) in zip(flat.params, flat.spans, strict=True):
        np.copyto(p.data, flat.p[a:b].reshape(p.data.shape))
