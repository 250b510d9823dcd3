"""Every primitive in PRIMITIVES either exports (and ONNX Runtime computes what nnet does) or raises
ExportError naming the op, the module it ran in and what to do."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
import nnet.nn.functional as F
from nnet import nn
from nnet.autograd.ops import PRIMITIVES
from nnet.autograd.ops import __dict__ as ops_namespace

from .roundtrip import assert_close, nnet_eval, run_onnx

onnx_export = pytest.importorskip("nnet.onnx")
pytest.importorskip("onnxruntime")

P = ops_namespace
W = np.random.default_rng(9).normal(size=(5, 3)).astype(np.float32)
MASK = np.random.default_rng(10).random((4, 5)) > 0.5

#: primitive name -> a function of a (N, 4, 5) float32 tensor that uses it
CASES = {
    "Add": lambda x: x + 1.5,
    "Sub": lambda x: 2.0 - x,
    "Neg": lambda x: -x,
    "Mul": lambda x: x * x,
    "Div": lambda x: x / (nnet.abs(x) + 1),
    "Pow": lambda x: x**3 + x**2,
    "Exp": lambda x: nnet.exp(x),
    "Log": lambda x: nnet.log(nnet.abs(x) + 0.5),
    "Sqrt": lambda x: nnet.sqrt(nnet.abs(x)),
    "Abs": lambda x: nnet.abs(x),
    "Sin": lambda x: nnet.sin(x),
    "Cos": lambda x: nnet.cos(x),
    "Tan": lambda x: nnet.tan(nnet.clip(x, -1.2, 1.2)),
    "Log1p": lambda x: nnet.log1p(nnet.abs(x)),
    "Expm1": lambda x: nnet.expm1(x),
    "Erf": lambda x: nnet.erf(x),
    "Softplus": lambda x: nnet.softplus(x * 10),
    "LogAddExp": lambda x: nnet.logaddexp(x * 10, 3.0 - x),
    "Sigmoid": lambda x: nnet.sigmoid(x),
    "Tanh": lambda x: nnet.tanh(x),
    "Relu": lambda x: nnet.relu(x),
    "Maximum": lambda x: nnet.maximum(x, 0.1),
    "Minimum": lambda x: nnet.minimum(x, x * 0.5),
    "Clip": lambda x: nnet.clip(x, -0.5, 0.5) + nnet.clip(x, max=np.linspace(-1, 1, 5)),
    "Where": lambda x: nnet.where(MASK, x, 0.0) + F.leaky_relu(x, 0.2),
    "AsType": lambda x: x.astype(np.float64) * 2,
    "Sum": lambda x: x.sum(axis=1) + x.sum(axis=(1, 2), keepdims=True)[:, 0],
    "Mean": lambda x: x.mean(axis=-1, keepdims=True),
    "Var": lambda x: nnet.var(x, axis=2, ddof=1) + nnet.var(x, axis=(1, 2))[:, None],
    "Max": lambda x: x.amax(axis=1) + x.max(1).values,
    "Min": lambda x: x.amin(axis=(1, 2), keepdims=True),
    "LogSumExp": lambda x: nnet.logsumexp(x, axis=1) + nnet.logsumexp(x, axis=1, keepdims=True)[:, 0],
    "Softmax": lambda x: nnet.softmax(x, axis=1),
    "LogSoftmax": lambda x: nnet.log_softmax(x, axis=-1),
    "MatMul": lambda x: x @ W,
    "Reshape": lambda x: x.reshape(x.shape[0], 20),
    "Transpose": lambda x: x.permute(0, 2, 1) + x.transpose(1, 2),
    "BroadcastTo": lambda x: nnet.broadcast_to(x[:, :1], x.shape),
    "GetItem": lambda x: nnet.cat([t.reshape(x.shape[0], -1) for t in (
        x[:, 1:3, ::-2], x[:, None, 0, 1:][:, 0, None], x[..., [4, 0]], x[:, -1], x[:, ::-1, -2:1:-1],
    )], axis=-1),
    "Concatenate": lambda x: nnet.cat([x, x * 2, x[:, :, :1] * 0 + 1], axis=-1),
    "Stack": lambda x: nnet.stack([x, x + 1], axis=-1),
    "Pad": lambda x: nnet.pad(x, ((0, 0), (1, 2), (0, 1)), -1.0),
    "SlidingWindows": lambda x: nnet.sliding_windows(x.reshape(x.shape[0], 4, 5, 1), 2, 1, (1, 2)),
}  # fmt: skip


def test_every_converter_has_a_case():
    for op in onnx_export.CONVERTERS:
        if op in PRIMITIVES:
            assert op.__name__ in CASES, f"{op.__name__} has a converter but no case here"


@pytest.mark.parametrize("op", PRIMITIVES, ids=lambda op: op.__name__)
def test_primitive_exports_or_names_itself(op, tmp_path):
    if op not in onnx_export.CONVERTERS:
        node = object.__new__(op)
        with pytest.raises(onnx_export.ExportError) as info:
            onnx_export.registry.converter_for(node, "blocks.2 (MyBlock)")
        message = str(info.value)
        assert op.__name__ in message and "blocks.2 (MyBlock)" in message
        assert "@nnet.onnx.register" in message
        return
    fn = CASES[op.__name__]
    x = np.random.default_rng(0).normal(size=(37, 4, 5)).astype(np.float32)
    path = tmp_path / "op.onnx"
    onnx_model = onnx_export.export(fn, x[:1], path)
    assert any(True for _ in onnx_model.graph.node)
    (got,) = run_onnx(path, {"input": x})
    (want,) = nnet_eval(fn, x)
    assert_close(got, want)


def test_primitives_without_converter_fail_in_a_model_with_module_path():
    """Col2Im has no converter (an adjoint, met in backward passes): a forward that uses it says
    which op, in which module, and what to do."""

    class Block(nn.Module):
        def forward(self, x):
            return nnet.col2im(x, (x.shape[0], 4, 4, 2), 1, 1)

    model = nn.Sequential(nn.Identity(), Block())
    cols = np.ones((1, 3, 3, 2, 2, 2), np.float32)
    with pytest.raises(onnx_export.ExportError) as info:
        onnx_export.export(model, cols)
    message = str(info.value)
    assert "Col2Im" in message and "1 (Block)" in message and "register" in message


def test_own_primitive_exports_after_register(tmp_path):
    class Cube(nnet.autograd.Function):
        def forward(ctx, x):
            return x**3

        def vjp(ctx, grad):
            (x,) = ctx.inputs
            return (grad * 3 * x * x,)

    model = nn.Sequential(nn.Linear(3, 3))
    run = lambda x: Cube.apply(model(x))  # noqa: E731
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    with pytest.raises(onnx_export.ExportError, match="Cube"):
        onnx_export.export(run, x[:1])

    @onnx_export.register(Cube)
    def convert(b, node):
        v = b.arg(node.args[0])
        return b.add("Mul", [v, b.add("Mul", [v, v])])

    try:
        path = tmp_path / "cube.onnx"
        onnx_export.export(run, x[:1], path)
        (got,) = run_onnx(path, {"input": x})
        assert_close(got, nnet_eval(run, x)[0])
    finally:
        del onnx_export.CONVERTERS[Cube]


@pytest.mark.parametrize(
    "fn",
    [lambda x: nnet.softplus(x * 30), lambda x: nnet.elu(x), lambda x: F.leaky_relu(x, 0.3)],
    ids=["softplus", "elu", "leaky_relu"],
)
def test_conditions_nnet_computes_from_data(fn, tmp_path):
    x = np.random.default_rng(0).normal(size=(37, 4, 5)).astype(np.float32)
    path = tmp_path / "op.onnx"
    onnx_export.export(fn, x[:1], path)
    (got,) = run_onnx(path, {"input": x})
    assert_close(got, nnet_eval(fn, x)[0])


def test_softplus_beyond_its_threshold(tmp_path):
    x = np.linspace(-30, 30, 37 * 20, dtype=np.float32).reshape(37, 4, 5)
    path = tmp_path / "op.onnx"
    onnx_export.export(lambda t: nnet.softplus(t), x[:1], path)
    (got,) = run_onnx(path, {"input": x})
    assert_close(got, nnet_eval(lambda t: nnet.softplus(t), x)[0])


#: Comparisons of tensors, recorded while export traces (ops.Compare), each used in a where or as
#: a mask; values near the thresholds come from the normal input, so a wrong operator fails.
COMPARISONS = {
    "greater": lambda x: nnet.where(x > 0.5, x, 0.0),
    "less": lambda x: nnet.where(x < -0.25, x * 2, x),
    "greater_equal": lambda x: nnet.where(x >= x[:, :1], x, -x),
    "less_equal": lambda x: nnet.where(0.1 <= x, 1.0, x),
    "equal": lambda x: nnet.where(nnet.relu(x) == 0, 3.0, x),
    "not_equal": lambda x: nnet.where(nnet.relu(x) != 0, x, -1.0),
    "and_or_not": lambda x: nnet.where(((x > -1) & (x < 1)) | ~(x > -2), x, 0.0),
    "mask": lambda x: x * (x > 0) + x.astype(np.float64).sum(1, keepdims=True).astype(np.float32),
    "float64": lambda x: nnet.where(x.astype(np.float64) > 0.5, x, 0.0),
    "nan_inf_sign": lambda x: (
        nnet.where(np.isnan(x) | np.isinf(x) | ~np.isfinite(x), 1.0, x) * np.sign(x)
        + nnet.where(x > 1, x, 0.0)
    ),
}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_comparisons_of_tensors_export(name, tmp_path):
    fn = COMPARISONS[name]
    x = np.random.default_rng(0).normal(size=(37, 4, 5)).astype(np.float32)
    path = tmp_path / "op.onnx"
    onnx_model = onnx_export.export(fn, x[:1], path)
    ops_used = {n.op_type for n in onnx_model.graph.node}
    assert ops_used & {"Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Equal"}, ops_used
    (got,) = run_onnx(path, {"input": x})
    assert_close(got, nnet_eval(fn, x)[0])


def test_comparisons_stay_outside_the_graph_when_not_tracing():
    x = nnet.tensor(np.ones(3, np.float32), requires_grad=True)
    mask = x > 0
    assert mask.grad_fn is None and not mask.requires_grad
    nnet.where(mask, x, 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(3, np.float32))
