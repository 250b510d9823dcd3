"""Converters for nnet's primitives (``nnet.autograd.ops.PRIMITIVES``), one function each.

Values keep nnet's layouts (NHWC images), so every op here maps onto its ONNX namesake with the
same axes. Constants are cast to the op's output dtype: ONNX does not promote types.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from nnet.autograd import ops
from nnet.onnx.builder import Builder, elem_type
from nnet.onnx.registry import ExportError, register
from nnet.onnx.trace import Node, Value

#: INT64 bounds that ONNX Slice clamps to the axis: "to the end" for either direction of step.
_END = np.iinfo(np.int64).max
_BEGIN = np.iinfo(np.int64).min


def _args(b: Builder, node: Node) -> list[str]:
    """Every argument as an ONNX name of the output's dtype (values of another dtype are cast)."""
    return [b.arg(a, node.out.dtype) for a in node.args]


#: Elementwise ops and MatMul: the ONNX operator of the same meaning, broadcasting alike.
SAME_OP: dict[type, str] = {
    ops.Add: "Add", ops.Sub: "Sub", ops.Mul: "Mul", ops.Div: "Div", ops.Pow: "Pow",
    ops.Neg: "Neg", ops.Exp: "Exp", ops.Log: "Log", ops.Sqrt: "Sqrt", ops.Abs: "Abs",
    ops.Sigmoid: "Sigmoid", ops.Tanh: "Tanh", ops.Relu: "Relu", ops.Maximum: "Max",
    ops.Minimum: "Min", ops.MatMul: "MatMul", ops.Sin: "Sin", ops.Cos: "Cos", ops.Tan: "Tan",
    ops.Erf: "Erf", ops.Softplus: "Softplus",
}  # fmt: skip


def _same(onnx_op: str) -> Any:
    return lambda b, node: b.add(onnx_op, _args(b, node))


for _op, _onnx in SAME_OP.items():
    register(_op)(_same(_onnx))


# ONNX has no log1p or expm1: composed, they lose the relative precision of |x| << 1 in float32
# (log1p(1e-8) becomes log(1) = 0), which a classifier's outputs do not notice.
@register(ops.Log1p)
def log1p(b: Builder, node: Node) -> str:
    (x,) = _args(b, node)
    return b.add("Log", [b.add("Add", [x, b.const(1, node.out.dtype)])])


@register(ops.Expm1)
def expm1(b: Builder, node: Node) -> str:
    (x,) = _args(b, node)
    return b.add("Sub", [b.add("Exp", [x]), b.const(1, node.out.dtype)])


@register(ops.LogAddExp)
def logaddexp(b: Builder, node: Node) -> str:
    """max(a, b) + log(1 + exp(-|a - b|)), stable for large operands."""
    x, y = _args(b, node)
    gap = b.add("Neg", [b.add("Abs", [b.add("Sub", [x, y])])])
    return b.add("Add", [b.add("Max", [x, y]), b.add("Softplus", [gap])])


@register(ops.Clip)
def clip(b: Builder, node: Node) -> str:
    a, lo, hi = node.args
    x = b.arg(a, node.out.dtype)
    if all(v is None or np.ndim(v) == 0 for v in (lo, hi)):
        bounds = ["" if v is None else b.const(v, node.out.dtype) for v in (lo, hi)]
        return b.add("Clip", [x, *bounds])
    if lo is not None:
        x = b.add("Max", [x, b.const(lo, node.out.dtype)])
    if hi is not None:
        x = b.add("Min", [x, b.const(hi, node.out.dtype)])
    return x


#: softplus's default threshold, above which it is the identity: ``where(z.data > 20, z, y)``.
SOFTPLUS_THRESHOLD = 20.0


#: Comparisons and logical ops (nnet records them while tracing: ops.Compare) by NumPy ufunc.
COMPARISONS: dict[Any, str] = {
    np.equal: "Equal", np.less: "Less", np.less_equal: "LessOrEqual", np.greater: "Greater",
    np.greater_equal: "GreaterOrEqual", np.logical_and: "And", np.logical_or: "Or",
    np.logical_not: "Not", np.not_equal: "Equal",  # then Not
    np.isnan: "IsNaN", np.isinf: "IsInf", np.sign: "Sign", np.isfinite: "IsNaN",  # then isinf, Or, Not
}  # fmt: skip


@register(ops.Compare)
def compare(b: Builder, node: Node) -> str:
    """A comparison of the operands in their common dtype (ONNX does not promote), or a logical
    op on bools; ``!=`` is Not(Equal)."""
    ufunc = cast(ops.Compare, node.fn).ufunc
    if ufunc not in COMPARISONS:
        raise ExportError(
            f"nnet.onnx.export: no ONNX operator for np.{ufunc.__name__} in {node.where}; "
            "compute that condition with comparisons (<, ==, &, ~) of the tensors"
        )
    logical = ufunc in (np.logical_and, np.logical_or, np.logical_not)
    dtype = bool if logical else np.result_type(*node.args2)
    args = [b.arg(a, dtype) for a in node.args]
    out = b.add(COMPARISONS[ufunc], args)
    if ufunc is np.isfinite:
        out = b.add("Or", [out, b.add("IsInf", args)])
    return b.add("Not", [out]) if ufunc in (np.not_equal, np.isfinite) else out


@register(ops.Where)
def where(b: Builder, node: Node) -> str:
    """A condition computed by recorded comparisons (nnet.where(x > t, ...)) is a value of the
    graph. An array condition exports when it is constant, when it equals ``v > 0`` for a branch
    ``v`` in both traces (leaky_relu, elu), or when it equals ``z > 20`` and the other branch is
    ``softplus(z)`` (softplus's linear region); anything else depends on the input in a way the
    graph does not show."""
    cond, a, c = node.args
    cond2 = node.args2[0]
    dtype = node.out.dtype
    branches = [b.arg(v, dtype) for v in (a, c)]
    if isinstance(cond, Value):
        return b.add("Where", [b.arg(cond, bool), *branches])
    if np.shape(cond) == np.shape(cond2) and np.array_equal(cond, cond2):
        return b.add("Where", [b.const(np.asarray(cond, bool)), *branches])
    test = None
    if (  # softplus's shape first: its condition is also often "z > 0" for the traced values
        isinstance(a, Value)
        and isinstance(c, Value)
        and isinstance(c.source.grad_fn, ops.Softplus)
        and c.source.grad_fn.inputs is not None
        and c.source.grad_fn.inputs[0] is a.source
        and _is_above(SOFTPLUS_THRESHOLD, cond, a.data, cond2, node.args2[1])
    ):
        test = (a, SOFTPLUS_THRESHOLD)
    for k, v in enumerate((a, c)):
        if test is None and isinstance(v, Value):
            if _is_above(0.0, cond, v.data, cond2, node.args2[1 + k]):
                test = (v, 0.0)
    if test is None:
        raise ExportError(
            f"nnet.onnx.export: where() in {node.where} takes a condition computed from the "
            "input's values outside the graph (an array, such as x.data < 0), so it cannot be "
            "exported; compare the tensors themselves (nnet.where(x < 0, ...)), or use ops that "
            "export (relu, maximum, minimum, clip)"
        )
    v, t = test
    above = b.add("Greater", [v.name, b.const(np.asarray(t, v.dtype))])
    return b.add("Where", [above, *branches])


def _is_above(t: float, cond: Any, v: np.ndarray, cond2: Any, v2: Any) -> bool:
    return all(
        np.shape(c) == np.shape(x) and np.array_equal(np.asarray(c, bool), np.asarray(x) > t)
        for c, x in ((cond, v), (cond2, v2))
    )


@register(ops.AsType)
def astype(b: Builder, node: Node) -> str:
    return b.add("Cast", [b.arg(node.args[0])], to=elem_type(node.out.dtype))


def _reduce(op: str) -> Any:
    def convert(b: Builder, node: Node) -> str:
        a, axes, keepdims = node.args
        return b.reduce(op, b.arg(a), axes, keepdims)

    return convert


REDUCTIONS: dict[type, str] = {
    ops.Sum: "ReduceSum", ops.Mean: "ReduceMean", ops.Max: "ReduceMax", ops.Min: "ReduceMin"
}  # fmt: skip
for _op, _onnx in REDUCTIONS.items():
    register(_op)(_reduce(_onnx))


@register(ops.Var)
def var(b: Builder, node: Node) -> str:
    a, axes, ddof, keepdims = node.args
    x = b.arg(a)
    centred = b.add("Sub", [x, b.reduce("ReduceMean", x, axes, True)])
    v = b.reduce("ReduceMean", b.add("Mul", [centred, centred]), axes, keepdims)
    if ddof == 0:
        return v
    if any(a.batch[i] for i in axes):
        raise ExportError(
            f"nnet.onnx.export: var(ddof={ddof}) over the batch axis in {node.where} divides by a "
            "count that follows the batch size; export with dynamic_batch=False"
        )
    n = int(np.prod([a.shape[i] for i in axes]))
    return b.add("Mul", [v, b.const(n / (n - ddof), node.out.dtype)])


@register(ops.LogSumExp)
def logsumexp(b: Builder, node: Node) -> str:
    a, axes, keepdims = node.args
    x = b.arg(a)
    top = b.reduce("ReduceMax", x, axes, True)
    s = b.reduce("ReduceSum", b.add("Exp", [b.add("Sub", [x, top])]), axes, keepdims)
    if not keepdims:
        top = b.add("Squeeze", [top, b.ints(axes, "axes")])
    return b.add("Add", [b.add("Log", [s]), top])


@register(ops.Softmax)
def softmax(b: Builder, node: Node) -> str:
    return b.add("Softmax", [b.arg(node.args[0])], axis=int(node.args[1]))


@register(ops.LogSoftmax)
def log_softmax(b: Builder, node: Node) -> str:
    return b.add("LogSoftmax", [b.arg(node.args[0])], axis=int(node.args[1]))


def static_shape(node: Node, what: str) -> list[int]:
    """The output's shape with -1 on the one axis that follows the batch size."""
    out = node.out
    shape = list(out.shape)
    moving = [i for i, m in enumerate(out.batch) if m]
    if len(moving) > 1:
        raise ExportError(
            f"nnet.onnx.export: {what} in {node.where} makes a shape {out.shape} in which "
            f"{len(moving)} axes follow the batch size; ONNX takes -1 for one only. Keep the batch "
            "on one axis, or export with dynamic_batch=False"
        )
    for i in moving:
        shape[i] = -1
    return shape


@register(ops.Reshape)
def reshape(b: Builder, node: Node) -> str:
    return b.add("Reshape", [b.arg(node.args[0]), b.ints(static_shape(node, "reshape"), "shape")])


@register(ops.Transpose)
def transpose(b: Builder, node: Node) -> str:
    a, axes = node.args
    perm = list(range(len(node.out.shape)))[::-1] if axes is None else [int(p) for p in axes]
    return b.transpose(b.arg(a), perm)


@register(ops.BroadcastTo)
def broadcast_to(b: Builder, node: Node) -> str:
    a = node.args[0]
    shape = list(node.out.shape)
    lead = len(shape) - len(np.shape(a.data if isinstance(a, Value) else a))
    for i, moving in enumerate(node.out.batch):
        if not moving:
            continue
        if not (isinstance(a, Value) and i >= lead and a.batch[i - lead]):
            raise ExportError(
                f"nnet.onnx.export: broadcast_to in {node.where} spreads a value over the batch "
                "axis; ONNX's Expand needs that size. Broadcast by an elementwise op with the "
                "batch instead, or export with dynamic_batch=False"
            )
        shape[i] = 1  # Expand keeps the input's size where the target says 1
    return b.add("Expand", [b.arg(a, node.out.dtype), b.ints(shape, "shape")])


@register(ops.GetItem)
def getitem(b: Builder, node: Node) -> str:
    """Basic indexing (ints, slices, None, Ellipsis) as Slice, Gather and Unsqueeze; one integer
    array on one axis as Gather."""
    a, index = node.args
    x = b.arg(a)
    items = list(index) if isinstance(index, tuple) else [index]
    ndim = len(a.shape)
    if any(i is Ellipsis for i in items):
        k = items.index(Ellipsis)
        used = sum(1 for i in items if i is not None and i is not Ellipsis)
        items[k : k + 1] = [slice(None)] * (ndim - used)
    items += [slice(None)] * (ndim - sum(1 for i in items if i is not None))
    arrays = [k for k, i in enumerate(items) if isinstance(i, (list, np.ndarray))]
    if arrays:
        pick = np.asarray(items[arrays[0]])
        rest = items[: arrays[0]] + items[arrays[0] + 1 :]
        if len(arrays) > 1 or pick.dtype.kind not in "iu" or any(i != slice(None) for i in rest):
            raise ExportError(
                f"nnet.onnx.export: the index {index!r} in {node.where} is not one integer array "
                "on one axis (the advanced indexing that exports as Gather); index one axis at a "
                "time"
            )
        return b.add("Gather", [x, b.const(pick.astype(np.int64))], axis=arrays[0])
    starts, ends, axes, steps, picks, new = [], [], [], [], [], []
    axis = out_axis = 0
    for i in items:
        if i is None:
            new.append(out_axis)
            out_axis += 1
            continue
        if isinstance(i, slice):
            if i != slice(None):
                step = 1 if i.step is None else int(i.step)
                starts.append((0 if step > 0 else _END) if i.start is None else int(i.start))
                ends.append((_END if step > 0 else _BEGIN) if i.stop is None else int(i.stop))
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:
            picks.append((axis, int(i)))
        axis += 1
    if axes:
        x = b.add("Slice", [x, b.ints(starts, "starts"), b.ints(ends, "ends"),
                            b.ints(axes, "axes"), b.ints(steps, "steps")])  # fmt: skip
    for axis, i in reversed(picks):
        x = b.add("Gather", [x, b.const(np.asarray(i, np.int64))], axis=axis)
    if new:
        x = b.add("Unsqueeze", [x, b.ints(new, "axes")])
    return x


@register(ops.Concatenate)
def concatenate(b: Builder, node: Node) -> str:
    return b.add("Concat", _args(b, node), axis=_axis(node))


@register(ops.Stack)
def stack(b: Builder, node: Node) -> str:
    axis = _axis(node) % len(node.out.shape)
    axes = b.ints([axis], "axes")
    return b.add("Concat", [b.add("Unsqueeze", [x, axes]) for x in _args(b, node)], axis=axis)


def _axis(node: Node) -> int:
    """The ``axis`` that concatenate and stack keep on the op (a keyword, not an argument)."""
    return int(cast(Any, node.fn).axis)


@register(ops.Pad)
def pad(b: Builder, node: Node) -> str:
    a, width, value = node.args
    width = np.broadcast_to(np.asarray(width, np.int64), (len(node.out.shape), 2))
    pads = b.ints([*width[:, 0], *width[:, 1]], "pads")
    return b.add("Pad", [b.arg(a), pads, b.const(value, node.out.dtype)], mode="constant")


@register(ops.SlidingWindows)
def sliding_windows(b: Builder, node: Node) -> str:
    """windows[n, r, c, i, j, k] = x[n, r s + i d, c s + j d, k] as one Gather over the H W pixels
    of each image, with the indices fixed at export."""
    x, kernel, stride, dilation = node.args
    _, h, w, c = x.shape
    if x.batch[1] or x.batch[2]:
        raise ExportError(f"nnet.onnx.export: sliding_windows in {node.where} over an image whose "
                          "height or width follows the batch size")  # fmt: skip
    oh, ow = node.out.shape[1:3]
    # index[r, c, i, j] = the flat pixel that window (r, c) reads at kernel offset (i, j)
    r = np.arange(oh)[:, None, None, None] * stride[0] + np.arange(kernel[0])[:, None] * dilation[0]
    q = np.arange(ow)[:, None, None] * stride[1] + np.arange(kernel[1]) * dilation[1]
    index = (r * w + q).astype(np.int64)
    flat = b.add("Reshape", [b.arg(x), b.ints([0, h * w, c], "shape")])
    return b.add("Gather", [flat, b.const(index, hint="window_pixels")], axis=1)
