"""Drawing the graph behind a tensor: Graphviz DOT text with no dependency, SVG with Graphviz.

Each recorded operation is one box (the op's name, its output's shape and dtype); each leaf is one
ellipse (its name when ``params`` names it, shape, dtype, and the norm of ``.grad`` once a backward
has filled it). Tensors that do not require gradients (constants) are grey.

A backward without ``retain_graph=True`` releases the graph as it goes: the ops stay, their inputs
are gone, and the drawing stops there with a note saying so. Draw before calling backward, or call
``backward(retain_graph=True)`` to draw afterwards with the gradients' norms.

>>> import nnet
>>> from nnet.viz import to_dot
>>> w = nnet.tensor([1.0, 2.0], requires_grad=True)
>>> print(to_dot((w * w).sum(), params={"w": w}).splitlines()[0])
digraph nnet {
"""

from __future__ import annotations

from typing import Any

from nnet.autograd.tensor import Tensor
from nnet.autograd.trace import norm, param_names

RELEASED_NOTE = (
    "graph released by backward(): the inputs of the ops marked 'released' are gone. "
    "Draw before backward, or call backward(retain_graph=True) to keep the graph drawable."
)

_INSTALL_HINT = (
    "nnet.viz.draw needs the graphviz Python package and the Graphviz 'dot' program: "
    "pip install graphviz (or pip install 'nnet[viz]') and install Graphviz itself "
    "(apt-get install graphviz, brew install graphviz, conda install graphviz). "
    "nnet.viz.to_dot(tensor) gives the DOT text without either."
)


class GraphvizUnavailable(RuntimeError):
    """The graphviz package or the ``dot`` program is missing; the message says how to get them."""


def _grad_line(t: Tensor) -> list[str]:
    return [] if t._grad is None else [f"|grad| = {norm(t._grad):.4g}"]


def _quote(*lines: str) -> str:
    """A DOT string literal, one label line per argument."""
    return '"' + "\\n".join(s.replace("\\", "\\\\").replace('"', '\\"') for s in lines) + '"'


def _describe(t: Tensor) -> str:
    shape = "x".join(map(str, t.shape)) if t.shape else "scalar"
    return f"{shape} {t.dtype}"


def to_dot(tensor: Tensor, params: Any = None) -> str:
    """The graph that produced ``tensor`` as Graphviz DOT text.

    Parameters
    ----------
    tensor : Tensor
        The output to draw from (usually the loss).
    params : Module or dict of name -> Tensor, optional
        Names for leaves: a Module's parameters appear by their module path (``0.weight``).

    Returns
    -------
    str
        A ``digraph``; render it with ``dot -Tsvg`` or :func:`draw`.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expects a Tensor, got {type(tensor).__name__}")
    names = param_names(params, "to_dot")
    ids: dict[int, str] = {}
    keep: list[Tensor] = []  # holds every drawn tensor so no id is reused during the walk
    nodes: list[str] = []
    edges: list[str] = []
    released = False

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
            name = names.get(id(t), "leaf" if t.requires_grad else "constant")
            style = "filled" if t.requires_grad else "filled,dashed"
            fill = "lightblue" if t.requires_grad else "grey90"
            label = _quote(name, _describe(t), *_grad_line(t))
            nodes.append(
                f'  {nid} [shape=ellipse, style="{style}", fillcolor={fill}, label={label}];'
            )
            continue
        gone = fn.inputs is None
        released |= gone
        label = _quote(fn.name + (" (released)" if gone else ""), _describe(t), *_grad_line(t))
        extra = ", peripheries=2" if t is tensor else ""
        color = "mistyrose" if gone else "white"
        nodes.append(f"  {nid} [shape=box, style=filled, fillcolor={color}{extra}, label={label}];")
        if gone:
            continue
        tensors = [(i, p) for i, p in enumerate(fn.inputs) if isinstance(p, Tensor)]  # type: ignore[arg-type]
        for i, p in tensors:
            pid, new = node_of(p)
            # the argument's position matters only when there are several (a - b, x @ w)
            edges.append(f"  {pid} -> {nid}" + (f" [label={i}];" if len(tensors) > 1 else ";"))
            if new:
                stack.append(p)
    lines = [
        "digraph nnet {",
        "  rankdir=BT;",
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


def draw(tensor: Tensor, params: Any = None) -> Drawing:
    """Render :func:`to_dot`'s graph as SVG with Graphviz (the optional ``viz`` extra).

    Raises
    ------
    GraphvizUnavailable
        When the ``graphviz`` package or the ``dot`` program is missing, saying how to install them.
    """
    dot = to_dot(tensor, params)
    try:
        import graphviz
    except ImportError:
        raise GraphvizUnavailable(_INSTALL_HINT) from None
    try:
        svg = graphviz.Source(dot).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        raise GraphvizUnavailable(_INSTALL_HINT) from None
    return Drawing(dot, svg)
