"""Drawing the graph behind a tensor: Graphviz DOT text with no dependency, SVG with Graphviz.

Left to right, as micrograd draws it: each recorded operation is one box (the op with its constant
arguments, ``Pow (x ** 2)``, and its module's path, ``0:Linear``; the output's shape and dtype, its
value and, once backward has filled it, its gradient); each leaf is one ellipse (its name from
``params``, ``names`` or ``t.name``, shape, dtype, value and ``.grad``). Values and gradients are the
numbers themselves for small tensors (signed), shape and a summary for larger ones. Tensors that do
not require gradients (constants) are grey; several inputs are numbered in argument order.

A plain ``backward()`` releases the graph as it goes; in teaching mode (``nnet.teaching()``) it keeps
what a drawing needs (each op's inputs and every gradient), so drawing after ``backward()`` shows the
whole graph with the gradients just computed. Otherwise the drawing stops at the released ops with a
note; ``backward(retain_graph=True)`` keeps the graph too (but not the intermediate gradients).

>>> import nnet
>>> from nnet.viz import to_dot
>>> w = nnet.tensor([1.0, 2.0], requires_grad=True)
>>> print(to_dot((w * w).sum(), params={"w": w}).splitlines()[0])
digraph nnet {
"""

from __future__ import annotations

from typing import Any

from nnet.autograd.show import module_of, name_of, names_of, op_label, values
from nnet.autograd.tensor import Tensor

RELEASED_NOTE = (
    "graph released by backward(): the inputs of the ops marked 'released' are gone. "
    "Draw before backward, call backward(retain_graph=True), or run it in teaching mode "
    "(nnet.teaching()), which keeps the graph and every gradient for drawing."
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


def _describe(t: Tensor) -> str:
    shape = "x".join(map(str, t.shape)) if t.shape else "scalar"
    return f"{shape} {t.dtype}"


def _lines(t: Tensor, stale: bool) -> list[str]:
    """``data ...`` and, when backward has filled it, ``grad ...`` (signed)."""
    lines = [_describe(t), f"data {values(t)}"]
    if t._grad is not None:
        lines.append(f"grad {values(t._grad)}" + (" (an earlier backward's)" if stale else ""))
    return lines


def _inputs(fn: Any) -> tuple[Any, ...] | None:
    return fn.inputs if fn.inputs is not None else fn.__dict__.get("drawn_inputs")


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
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expects a Tensor, got {type(tensor).__name__}")
    given = names_of(params, names, "to_dot")
    ids: dict[int, str] = {}
    keep: list[Tensor] = []  # holds every drawn tensor so no id is reused during the walk
    nodes: list[str] = []
    edges: list[str] = []
    released = False
    root_fn = tensor.grad_fn
    # leaves' .grad before this graph's own backward comes from an earlier one: say so
    stale = root_fn is not None and not root_fn.backpropagated

    def node_of(t: Tensor) -> tuple[str, bool]:
        k = id(t)
        if k in ids:
            return ids[k], False
        ids[k] = f"n{len(ids)}"
        keep.append(t)
        return ids[k], True

    root_id, _ = node_of(tensor)
    stack = [tensor]
    while stack:
        t = stack.pop()
        nid = ids[id(t)]
        fn = t.grad_fn
        if fn is None:
            name = name_of(t, given) or ("leaf" if t.requires_grad else "constant")
            style = "filled" if t.requires_grad else "filled,dashed"
            fill = "lightblue" if t.requires_grad else "grey90"
            label = _quote(name, *_lines(t, stale))
            nodes.append(
                f'  {nid} [shape=ellipse, style="{style}", fillcolor={fill}, label={label}];'
            )
            continue
        inputs = _inputs(fn)
        gone = inputs is None
        released |= gone
        op = op_label(fn, inputs, module_of(fn, inputs, given)) + (" (released)" if gone else "")
        named = name_of(t, given)
        label = _quote(f"{named} = {op}" if named else op, *_lines(t, False))
        extra = ", peripheries=2" if t is tensor else ""
        color = "mistyrose" if gone else "white"
        nodes.append(f"  {nid} [shape=box, style=filled, fillcolor={color}{extra}, label={label}];")
        if inputs is None:
            continue
        tensors = [(i, p) for i, p in enumerate(inputs) if isinstance(p, Tensor)]
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
