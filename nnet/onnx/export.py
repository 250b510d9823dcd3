"""`export`: a model's eval-mode forward written as an ONNX file, checked by ``onnx.checker``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from nnet.autograd.tensor import Tensor
from nnet.kernels import FUSED
from nnet.onnx import kernels, primitives  # noqa: F401 - they fill the converter table
from nnet.onnx.builder import Builder, elem_type
from nnet.onnx.layout import cancel_transposes
from nnet.onnx.registry import CONVERTERS, ExportError, converter_for
from nnet.onnx.trace import Node, Traced, Value, trace

#: Ops whose converter reads a constant argument that differs between the two traces (where's
#: condition); for any other op such a constant was computed from the input and cannot export.
READS_DATA = {primitives.where}


def export(
    model: Any,
    example_input: Any,
    path: str | Path | None = None,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    opset: int = 17,
    fused: bool = True,
) -> onnx.ModelProto:
    """Write ``model``'s eval-mode forward on inputs like ``example_input`` as an ONNX model.

    The forward runs (twice) with the model in eval mode and its recorded graph becomes the ONNX
    graph: parameters and buffers are its initializers, each op goes through its converter
    (:data:`nnet.onnx.CONVERTERS`). Images stay NHWC at the model's edges; inside, each NCHW
    operator (Conv, MaxPool) has a transpose on either side, and ONNX Runtime cancels the pairs
    that meet. The model's mode is restored afterwards.

    Parameters
    ----------
    model : Module or callable
        Any module (a define-by-run ``forward`` too) or function of tensors returning a tensor
        or a tuple of tensors.
    example_input : array, Tensor or tuple of them
        One input per argument of ``forward``; batch first.
    path : str or Path, optional
        Where to write the ``.onnx`` file; the model is returned either way.
    input_names, output_names : sequence of str, optional
        Names of the graph's inputs and outputs (default ``input``, ``output``, numbered when
        there are several).
    dynamic_batch : bool
        The first axis of each input (and every axis that follows it) is symbolic, ``batch``.
    opset : int
        The ONNX opset (17 or later).
    fused : bool
        Trace the fused kernels (one ONNX operator per layer) or their compositions of primitives.
        A fused kernel without a converter makes the export trace the composition anyway.

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    ExportError
        For an op without a converter (naming it and the module it ran in), or a forward whose
        graph depends on the input's values or batch size.

    Examples
    --------
    >>> import numpy as np, nnet, nnet.onnx
    >>> model = nnet.nn.Sequential(nnet.nn.Linear(4, 3), nnet.nn.ReLU())
    >>> onnx_model = nnet.onnx.export(model, np.zeros((1, 4), np.float32))
    >>> [n.op_type for n in onnx_model.graph.node]
    ['Gemm', 'Relu']
    """
    if opset < 17:
        raise ExportError(f"nnet.onnx.export: opset {opset} is too old; use 17 or later")
    examples = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    arrays = [np.asarray(e.data if isinstance(e, Tensor) else e) for e in examples]
    for i, a in enumerate(arrays):
        if dynamic_batch and a.ndim == 0:
            raise ExportError(
                f"nnet.onnx.export: input {i} is a scalar, with no batch axis; pass a batch "
                "(shape (N, ...)) or dynamic_batch=False"
            )
    traced = _trace(model, arrays, dynamic_batch, fused)
    names = _names(model)
    b = Builder(opset, names)
    ins = _names_for(traced.inputs, input_names, "input")
    outs = _names_for(traced.outputs, output_names, "output")
    for name in (*ins, *outs):
        b.fresh(name)  # taken first, so no node's output takes them
    for v, name in zip(traced.inputs, ins, strict=True):
        v.name = name
    for node in traced.nodes:
        _convert(b, node)
    _name_outputs(b, [v.name for v in traced.outputs], outs, ins)
    b.nodes = cancel_transposes(b.nodes, outs)
    graph = helper.make_graph(
        b.nodes,
        "nnet",
        [_info(name, v, dynamic_batch) for name, v in zip(ins, traced.inputs, strict=True)],
        [_info(name, v, dynamic_batch) for name, v in zip(outs, traced.outputs, strict=True)],
        b.initializers,
    )
    result = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="nnet"
    )
    onnx.checker.check_model(result, full_check=True)
    if path is not None:
        onnx.save(result, str(path))
    return result


def _trace(model: Any, arrays: list[np.ndarray], dynamic: bool, fused: bool) -> Traced:
    training = getattr(model, "training", None)
    if training is not None:
        model.eval()
    try:
        traced = trace(model, arrays, dynamic, fused)
        if fused and any(
            type(n.fn) in FUSED and type(n.fn) not in CONVERTERS for n in traced.nodes
        ):
            traced = trace(model, arrays, dynamic, False)
    finally:
        if training is not None:
            model.train(training)
    return traced


def _names(model: Any) -> dict[int, str]:
    """``id(array) -> path`` of the model's parameters and buffers, to name initializers."""
    names: dict[int, str] = {}
    for get in ("named_parameters", "named_buffers"):
        for name, t in getattr(model, get, lambda: ())():
            if isinstance(t, Tensor):
                names.setdefault(id(t.data), name)
    return names


def _names_for(values: list[Value], given: Sequence[str] | None, stem: str) -> list[str]:
    if given is not None and len(given) != len(values):
        raise ExportError(
            f"nnet.onnx.export: {len(given)} {stem}_names for {len(values)} {stem}s of the model"
        )
    if given is not None:
        return [str(n) for n in given]
    return [stem] if len(values) == 1 else [f"{stem}_{i}" for i in range(len(values))]


def _name_outputs(b: Builder, values: list[str], outs: list[str], ins: list[str]) -> None:
    """Give the nodes that compute the outputs the outputs' names; an Identity where a value is an
    input or serves as two outputs."""
    renamed: dict[str, str] = {}
    for value, name in zip(values, outs, strict=True):
        if value in ins or value in renamed or values.count(value) > 1:
            b.nodes.append(helper.make_node("Identity", [value], [name]))
        else:
            renamed[value] = name
    for n in b.nodes:
        for names in (n.input, n.output):
            for k, x in enumerate(names):
                if x in renamed:
                    names[k] = renamed[x]


def _convert(b: Builder, node: Node) -> None:
    b.where = node.where
    convert = converter_for(node.fn, node.where)
    if convert not in READS_DATA:
        for k, (a, a2) in enumerate(zip(node.args, node.args2, strict=False)):
            if isinstance(a, np.ndarray) and not (
                isinstance(a2, np.ndarray) and a.shape == a2.shape and np.array_equal(a, a2)
            ):
                raise ExportError(
                    f"nnet.onnx.export: argument {k} of {node.op} in {node.where} is an array "
                    "that changes with the input (its values or its batch size) but is not "
                    "computed in the graph, so the exported model could not recompute it; "
                    "compute it with nnet's ops from the input tensor"
                )
    node.out.name = convert(b, node)


def _info(name: str, v: Value, dynamic: bool) -> onnx.ValueInfoProto:
    shape: list[Any] = [
        "batch" if dynamic and m else n for n, m in zip(v.shape, v.batch, strict=True)
    ]
    return helper.make_tensor_value_info(name, elem_type(v.dtype), shape)
