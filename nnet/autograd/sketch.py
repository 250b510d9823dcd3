"""What a released graph keeps for drawing: its structure and small numbers, never big arrays.

A backward without ``retain_graph`` drops each op's inputs as soon as its VJP has run, so that the
activations are freed while the walk goes on. So that ``nnet.viz.to_dot(loss)`` after a plain
``loss.backward()`` still draws the graph with the gradients just computed, the walk leaves on each op
(``engine._keep_for_drawing``):

* ``fn.drawn_grad``: the gradient this backward computed for the op's output when it has at most
  :data:`SMALL` elements, else None (a summary would cost a pass over every big gradient);
* ``fn.drawn_inputs``: the op's inputs, the same tuple when none of them is a tensor or array of more
  than :data:`SMALL` elements (a scalar lesson's graph: nothing is copied or made), otherwise a copy in
  which each bigger one is a :class:`Sketch` (shape, dtype, its op, so the drawing goes on, its name,
  and a weak reference: its values show while somebody else still holds it). Leaves that require
  grad (parameters) stay as they are: their model holds them anyway;

and on the op of the tensor that ``backward`` was called on, ``fn.drawn_record``: leaf id -> the
gradient that backward left in the leaf's ``.grad`` (a copy when small, a weak reference to the
``.grad`` tensor when big), so a drawing tells this graph's gradients from those of a later backward
or an earlier one.

What is kept lives as long as the output tensor does (the ``loss`` variable) and only that long. The
walk keeps this for the :data:`KEEP` ops nearest the root: a drawing of more would be unreadable, and a
graph of a million scalar ops is not held in memory for it. Teaching mode keeps everything, whatever
its size.

Cost, measured when this was written: on ``benchmarks.instructions``' chain of 16-element ops (the
engine's most overhead-bound case) about 2,000 more instructions per op, +6% (callgrind, which the
machine's load cannot move; two slot stores and a size test per op, and the small tensors living
until the output goes); on the MLP step and the wide CNN's peak memory (``python -m benchmarks
--only mlp_step,memory``) no difference beyond the run-to-run noise.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from nnet.autograd import show
from nnet.autograd.tensor import Tensor

#: Tensors and arrays up to this many elements are kept as they are, with their gradients.
SMALL = 16
#: At most this many ops per backward keep a sketch.
KEEP = 10_000

_Tensor = Tensor
_ndarray = np.ndarray


class Sketch:
    """A big tensor (or array constant) of a released op, without its values.

    ``tensor()`` gives the tensor itself while somebody else still holds it, else None.
    """

    __slots__ = ("_ref", "dtype", "grad_fn", "is_tensor", "name", "requires_grad", "shape")

    def __init__(self, x: Any) -> None:
        self.is_tensor = isinstance(x, _Tensor)
        arr = x.data if self.is_tensor else x
        self.shape: tuple[int, ...] = arr.shape
        self.dtype = arr.dtype
        self.requires_grad = self.is_tensor and x.requires_grad
        self.grad_fn = x.grad_fn if self.is_tensor else None
        self.name = show.get_name(x) if self.is_tensor else None
        self._ref = weakref.ref(x)

    def tensor(self) -> Tensor | None:
        t = self._ref()
        return t if self.is_tensor else None  # type: ignore[return-value]

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.shape)) or "scalar"
        return f"<{shape} {self.dtype} {'tensor' if self.is_tensor else 'array'}>"


def is_big(x: Any, small: int) -> bool:
    """A tensor or array of more than ``small`` elements, other than a leaf that requires grad (a
    parameter: its model holds it anyway); anything else is kept as it is."""
    if isinstance(x, _Tensor):
        return x.data.size > small and (x.grad_fn is not None or not x.requires_grad)
    return isinstance(x, _ndarray) and x.size > small


def sketched(inputs: tuple[Any, ...], small: int) -> tuple[Any, ...]:
    """``inputs`` with each tensor or array of more than ``small`` elements as a :class:`Sketch`."""
    return tuple([Sketch(x) if is_big(x, small) else x for x in inputs])


def note_leaf(record: dict[int, Any], leaf: Tensor) -> None:
    """Remember the gradient a backward left in ``leaf.grad``: a copy when small (zero_grad(False)
    or an optimizer may change the tensor in place), else a weak reference to the tensor."""
    g = leaf._grad
    if g is None:
        return
    record[id(leaf)] = g.data.copy() if g.data.size <= SMALL else weakref.ref(g)


def leaf_grad(record: dict[int, Any], leaf: Tensor) -> tuple[str, Any]:
    """What a drawing says of ``leaf``'s gradient from the backward that made ``record``:
    ``("grad", array)``, ``("replaced", None)`` when ``.grad`` has changed hands since (zero_grad,
    a later backward), or ``("none", None)`` when that backward gave the leaf no gradient."""
    kept = record.get(id(leaf))
    if kept is None:
        return "none", None
    if kept.__class__ is _ndarray:
        return "grad", kept
    g = kept()
    if g is None or g is not leaf._grad:
        return "replaced", None
    return "grad", g.data
