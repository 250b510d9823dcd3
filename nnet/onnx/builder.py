"""`Builder`: the ONNX graph under construction, with helpers the converters share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnet.onnx.registry import ExportError
from nnet.onnx.trace import Value

#: nnet's images are NHWC and ONNX's image operators NCHW: these permutations go between them.
TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


class Builder:
    """ONNX nodes and initializers, named uniquely; constants shared by identity.

    ``names`` gives initializers made from a model's parameters and buffers their module paths
    (``id(array) -> name``).
    """

    def __init__(self, opset: int, names: dict[int, str]) -> None:
        self.opset = opset
        self.names = names
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        # by the source array's identity; the array is kept so that its id is not reused
        self._consts: dict[Any, tuple[np.ndarray, str]] = {}
        self._taken: set[str] = set()
        self.where = ""  # the module path of the node being converted, for error messages

    def fresh(self, hint: str) -> str:
        name, k = hint, 1
        while name in self._taken:
            k += 1
            name = f"{hint}_{k}"
        self._taken.add(name)
        return name

    def const(self, array: Any, dtype: Any = None, hint: str = "const") -> str:
        """An initializer holding ``array`` (cast to ``dtype`` when given)."""
        source = array
        a = np.asarray(array)
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        key = (id(source), a.dtype.str, a.shape) if isinstance(source, np.ndarray) else None
        if key is not None and key in self._consts:
            return self._consts[key][1]
        name = self.fresh(self.names.get(id(source), hint) if key is not None else hint)
        self.initializers.append(numpy_helper.from_array(np.array(a, order="C", copy=None), name))
        if key is not None:
            self._consts[key] = (source, name)
        return name

    def name_of(self, array: Any, default: str) -> str:
        """The module path of a parameter or buffer's array, else ``default``: a hint for a
        constant derived from it."""
        return self.names.get(id(array), default)

    def ints(self, values: Sequence[int], hint: str = "ints") -> str:
        """A 1-D int64 initializer (shapes, axes, pads)."""
        return self.const(np.asarray(list(values), np.int64), hint=hint)

    def arg(self, a: Any, dtype: Any = None) -> str:
        """The name of an op argument: a graph value (cast to ``dtype`` when given and different),
        or a new initializer for a constant."""
        if isinstance(a, Value):
            if dtype is None or np.dtype(dtype) == a.dtype:
                return a.name
            return self.add("Cast", [a.name], to=elem_type(dtype))
        if a is None:
            raise ExportError(
                f"nnet.onnx.export: an argument is None where a value is needed, in {self.where}"
            )
        return self.const(a, dtype)

    def add(self, op: str, inputs: Sequence[str], hint: str | None = None, **attrs: Any) -> str:
        """One ONNX node; returns the name of its (single) output."""
        out = self.fresh(hint or op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        return self.add("Transpose", [x], perm=list(perm))

    def reduce(self, op: str, x: str, axes: Sequence[int], keepdims: bool) -> str:
        """``op`` (ReduceSum, ReduceMean, ...) over ``axes``: an input from opset 18 on (and for
        ReduceSum from 13), an attribute before."""
        if op == "ReduceSum" or self.opset >= 18:
            return self.add(op, [x, self.ints(axes, "axes")], keepdims=int(keepdims))
        return self.add(op, [x], axes=list(axes), keepdims=int(keepdims))

    def nchw(self, op: str, inputs: Sequence[str], **attrs: Any) -> str:
        """The NCHW operator ``op`` on an NHWC first input: a transpose on each side (ONNX
        Runtime's optimizer cancels the pairs that meet between two such ops; see docs/onnx.md)."""
        x = self.transpose(inputs[0], TO_NCHW)
        return self.transpose(self.add(op, [x, *inputs[1:]], **attrs), TO_NHWC)


def elem_type(dtype: Any) -> int:
    """ONNX's element type for a NumPy dtype."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
