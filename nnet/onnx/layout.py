"""Graph clean-up after conversion: pairs of transposes that undo each other, and dead nodes.

Each NCHW operator comes with a transpose on each side (builder.Builder.nchw); where two such
operators follow each other (a convolution, then a pool) the NHWC -> NCHW transpose after the
first meets the NCHW -> NHWC one before the second, and both go.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx
from onnx import helper


def _perm(node: onnx.NodeProto) -> list[int]:
    return list(next(a for a in node.attribute if a.name == "perm").ints)


def cancel_transposes(nodes: list[onnx.NodeProto], outputs: Sequence[str]) -> list[onnx.NodeProto]:
    """``nodes`` with each transpose of a transpose merged (dropped when the two cancel), then
    without the nodes whose results nothing uses."""
    made = {n.output[0]: n for n in nodes}
    renamed: dict[str, str] = {}
    result = []
    for n in nodes:
        for k, name in enumerate(n.input):
            if name in renamed:
                n.input[k] = renamed[name]
        first = made.get(n.input[0]) if n.op_type == "Transpose" else None
        if first is not None and first.op_type == "Transpose":
            p1, p2 = _perm(first), _perm(n)
            perm = [p1[i] for i in p2]
            if perm == sorted(perm):
                renamed[n.output[0]] = first.input[0]
                continue
            n = helper.make_node("Transpose", [first.input[0]], list(n.output), perm=perm)
            made[n.output[0]] = n
        result.append(n)
    return _live(result, outputs)


def _live(nodes: list[onnx.NodeProto], outputs: Sequence[str]) -> list[onnx.NodeProto]:
    """The nodes that an output depends on, in their order."""
    needed = set(outputs)
    keep = []
    for n in reversed(nodes):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(i for i in n.input if i)
    return keep[::-1]
