"""Drawing the graph behind a tensor: Graphviz DOT text with no dependency, SVG with Graphviz.

Left to right, as micrograd draws it: each recorded operation is one box (the op with its constant
arguments, ``Pow (x ** 2)``, and its module's path, ``0:Linear``; the output's shape and dtype, its
value and, once backward has filled it, its gradient); each leaf is one ellipse (its name from
``params``, ``names`` or ``t.name``, shape, dtype, value and ``.grad``). Values and gradients are the
numbers themselves for small tensors (signed), shape and a summary for larger ones. Tensors that do
not require gradients (constants) are grey; several inputs are numbered in argument order.

Drawn after ``loss.backward()``, the graph shows the gradients that backward just computed. A plain
``backward()`` frees the big arrays as it goes but keeps what a drawing needs
(nnet/autograd/sketch.py): the graph's structure, and the values and gradients of tensors of up to 16
elements; bigger ones show their shape ("data not kept", "grad not kept") unless somebody still holds
them. Leaves show the gradient that backward left them, never one from an earlier or later step.
Teaching mode (``nnet.teaching()``) keeps everything, whatever its size.

>>> import nnet
>>> from nnet.viz import to_dot
>>> w = nnet.tensor([1.0, 2.0], requires_grad=True)
>>> print(to_dot((w * w).sum(), params={"w": w}).splitlines()[0])
digraph nnet {
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.show import is_tensor, live, module_of, name_of, names_of, op_label, values
from nnet.autograd.sketch import KEEP, leaf_grad
from nnet.autograd.tensor import Tensor

RELEASED_NOTE = (
    f"the ops marked 'released' lost their inputs in backward(), which keeps what a drawing needs "
    f"for the {KEEP} ops nearest the output only. Draw before backward, call "
    "backward(retain_graph=True), or use teaching mode (nnet.teaching()), which keeps everything."
)

_INSTALL_HINT = (
    "nnet.viz.draw needs the graphviz Python package and the Graphviz 'dot' program: "
    "pip install graphviz (or pip install 'nnet[viz]') and install Graphviz itself "
    "(apt-get install graphviz, brew install graphviz, conda install graphviz). "
    "nnet.viz.to_dot(tensor) gives the DOT text without either."
)


class GraphvizUnavailable(RuntimeError):
    """The graphviz package or the ``dot`` program is missing; the message says how to get them."""


def _quote(*lines: str) -> str:
    """A DOT string literal, one label line per argument."""
    return '"' + "\\n".join(s.replace("\\", "\\\\").replace('"', '\\"') for s in lines) + '"'


def _describe(x: Any) -> str:
    shape = "x".join(map(str, x.shape)) if x.shape else "scalar"
    return f"{shape} {x.dtype}"


def _size(x: Any) -> int:
    return int(np.prod(x.shape))


_NONE = object()  # an op no backward has passed: it has no drawn_grad yet


class _Grads:
    """Which gradient a drawing shows for each node: the ones computed by the last backward that
    went through the drawn output (``record``, see nnet/autograd/sketch.py), never an older one."""

    def __init__(self, root: Tensor) -> None:
        fn = root.grad_fn
        self.record: dict[int, Any] | None = None if fn is None else fn.__dict__.get("drawn_record")
        self.root_is_leaf = fn is None

    def interior(self, x: Any, t: Tensor | None) -> str | None:
        if t is not None and t._grad is not None:  # retain_grad() or teaching mode
            return f"grad {values(t._grad)}"
        g = getattr(x.grad_fn, "drawn_grad", _NONE)
        if g is _NONE or self.record is None:
            return None  # no backward has gone through it yet
        if g is None:
            return f"grad not kept ({_size(x)} elements; retain_grad() or teaching mode keeps it)"
        return f"grad {values(g)}"

    def leaf(self, t: Tensor | None) -> str | None:
        if t is None:
            return None
        if self.root_is_leaf:
            return None if t._grad is None else f"grad {values(t._grad)}"
        if self.record is None:  # this graph has not run backward: .grad is some other graph's
            return None if t._grad is None else "grad: none yet (.grad is an earlier backward's)"
        kind, g = leaf_grad(self.record, t)
        if kind == "grad":
            return f"grad {values(g)}"
        if kind == "replaced":
            return "grad: .grad has changed since this backward (zero_grad, a later backward)"
        return None


def _data(x: Any, t: Tensor | None) -> str:
    if t is not None:
        return f"data {values(t)}"
    return f"data not kept ({_size(x)} elements)"


def _inputs(fn: Any) -> tuple[Any, ...] | None:
    """The op's inputs: live, or as backward kept them for drawing (sketch.py); None if neither."""
    if fn.inputs is not None:
        return fn.inputs  # type: ignore[no-any-return]
    return getattr(fn, "drawn_inputs", None)


def _key(x: Any) -> int:
    """One node per tensor: a sketch is the tensor while it lives, else its weak reference (the
    sketches of one tensor share it)."""
    t = live(x)
    return id(t) if t is not None else id(x._ref)


def to_dot(tensor: Tensor, params: Any = None, names: Any = None) -> str:
    """The graph that produced ``tensor`` as Graphviz DOT text, with values and gradients.

    Parameters
    ----------
    tensor : Tensor
        The output to draw from (usually the loss).
    params : Module or dict of name -> Tensor, optional
        Names for leaves: a Module's parameters appear by their module path (``0.weight``), and the
        ops that take them by the module's path (``0:Linear``).
    names : dict of name -> Tensor, optional
        Names for any tensor of the graph, intermediate ones included (``t.name = ...`` too).

    Returns
    -------
    str
        A ``digraph``; render it with ``dot -Tsvg`` or :func:`draw`.

    Examples
    --------
    >>> import nnet
    >>> from nnet.viz import to_dot
    >>> a = nnet.tensor(2.0, requires_grad=True)
    >>> loss = a * -3.0
    >>> loss.backward()
    >>> print([line for line in to_dot(loss, names={"a": a}).splitlines() if "grad -3" in line][0])
      n1 [shape=ellipse, style="filled", fillcolor=lightblue, label="a\\nscalar float32\\ndata 2\\ngrad -3"];
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expects a Tensor, got {type(tensor).__name__}")
    given = names_of(params, names, "to_dot")
    grads = _Grads(tensor)
    ids: dict[int, str] = {}
    keep: list[Any] = []  # holds every drawn node so no id is reused during the walk
    nodes: list[str] = []
    edges: list[str] = []
    released = False

    def node_of(x: Any) -> tuple[str, bool]:
        k = _key(x)
        if k in ids:
            return ids[k], False
        ids[k] = f"n{len(ids)}"
        keep.append(x)
        return ids[k], True

    root_id, _ = node_of(tensor)
    stack: list[Any] = [tensor]
    while stack:
        x = stack.pop()
        t = live(x)
        nid = ids[_key(x)]
        fn = x.grad_fn
        name = (name_of(t, given) if t is not None else None) or getattr(x, "name", None)
        if fn is None:
            name = name or ("leaf" if x.requires_grad else "constant")
            style = "filled" if x.requires_grad else "filled,dashed"
            fill = "lightblue" if x.requires_grad else "grey90"
            grad = grads.leaf(t)
            label = _quote(name, _describe(x), _data(x, t), *([grad] if grad else []))
            nodes.append(
                f'  {nid} [shape=ellipse, style="{style}", fillcolor={fill}, label={label}];'
            )
            continue
        inputs = _inputs(fn)
        gone = inputs is None
        released |= gone
        op = op_label(fn, inputs, module_of(fn, inputs, given)) + (" (released)" if gone else "")
        grad = grads.interior(x, t)
        label = _quote(
            f"{name} = {op}" if name else op, _describe(x), _data(x, t), *([grad] if grad else [])
        )
        extra = ", peripheries=2" if x is tensor else ""
        color = "mistyrose" if gone else "white"
        nodes.append(f"  {nid} [shape=box, style=filled, fillcolor={color}{extra}, label={label}];")
        if inputs is None:
            continue
        tensors = [(i, p) for i, p in enumerate(inputs) if is_tensor(p)]
        for i, p in tensors:
            pid, new = node_of(p)
            # the argument's position matters only when there are several (a - b, x @ w)
            edges.append(f"  {pid} -> {nid}" + (f" [label={i}];" if len(tensors) > 1 else ";"))
            if new:
                stack.append(p)
    lines = [
        "digraph nnet {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    if tensor.grad_fn is None:
        lines.append(f"  // the tensor is a leaf: no recorded operation produced it ({root_id})")
    if released:
        lines.append(f"  labelloc=t; label={_quote(RELEASED_NOTE)};")
    return "\n".join([*lines, *nodes, *edges, "}"]) + "\n"


class Drawing:
    """A rendered graph: ``.svg`` text, ``.dot`` source; shows itself inline in Jupyter."""

    def __init__(self, dot: str, svg: str) -> None:
        self.dot = dot
        self.svg = svg

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str) -> None:
        """Write the SVG to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)

    def __repr__(self) -> str:
        return f"<nnet.viz.Drawing: {self.dot.count('->')} edges, {len(self.svg)} bytes of SVG>"


def draw(tensor: Tensor, params: Any = None, names: Any = None) -> Drawing:
    """Render :func:`to_dot`'s graph as SVG with Graphviz (the optional ``viz`` extra).

    Raises
    ------
    GraphvizUnavailable
        When the ``graphviz`` package or the ``dot`` program is missing, saying how to install them.
    """
    dot = to_dot(tensor, params, names)
    try:
        import graphviz
    except ImportError:
        raise GraphvizUnavailable(_INSTALL_HINT) from None
    try:
        svg = graphviz.Source(dot).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        raise GraphvizUnavailable(_INSTALL_HINT) from None
    return Drawing(dot, svg)
