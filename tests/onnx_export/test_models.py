"""Whole models through ONNX Runtime: the seed CNN, the MLP, the wide CNN, and a define-by-run model
with a branch and a residual addition; exported at batch 1 and run at 37."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
import nnet.nn.functional as F
from nnet import nn
from nnet.train.models import mlp, seed_cnn

from .roundtrip import images, randomise_batch_norms, roundtrip

pytest.importorskip("onnxruntime")


def wide_cnn() -> nn.Module:
    """benchmarks/nnet_models.py's wide CNN (its second block runs Winograd in training)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


class Branchy(nn.Module):
    """Define-by-run: two branches from one stem, concatenated; a residual block; global average
    pooling; a softmax head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3)
        self.left = nn.Conv2d(8, 4, 3)
        self.right = nn.Conv2d(8, 4, 1)
        self.bn = nn.BatchNorm2d(8)
        self.inner = nn.Conv2d(8, 8, 3)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        h = F.relu(self.stem(x))
        h = nnet.cat([self.left(h), nnet.tanh(self.right(h))], axis=-1)
        h = self.bn(h)
        h = h + F.relu(self.inner(h))  # the residual addition
        h = F.max_pool2d(h, 2)
        return F.softmax(h.mean(axis=(1, 2)) @ self.head.weight + self.head.bias, axis=-1)


MODELS = {
    "seed_cnn": lambda: seed_cnn((28, 28, 1)),
    "mlp": lambda: mlp((28, 28, 1)),
    "wide_cnn": wide_cnn,
    "define_by_run": Branchy,
}


def _trained_a_little(model: nn.Module) -> nn.Module:
    """One training step, so the batch norms' running statistics and the weights are not their
    initial values."""
    x = images(16, 28, 28, 1, seed=5)
    y = np.arange(16) % 10
    opt = nnet.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(nnet.tensor(x)), nnet.tensor(y))
    loss.backward()
    opt.step()
    randomise_batch_norms(model)
    return model


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("fused", [True, False])
def test_model_runs_in_onnx_runtime(name, fused, tmp_path):
    nnet.manual_seed(0)
    model = _trained_a_little(MODELS[name]())
    runs = [images(1, 28, 28, 1, seed=6), images(37, 28, 28, 1, seed=7)]
    roundtrip(model, images(1, 28, 28, 1), runs, tmp_path, fused=fused)


def test_fixed_batch(tmp_path):
    nnet.manual_seed(0)
    model = seed_cnn((28, 28, 1))
    x = images(4, 28, 28, 1)
    onnx_model = roundtrip(model, x, [images(4, 28, 28, 1, seed=1)], tmp_path, dynamic_batch=False)
    dims = onnx_model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, 28, 28, 1]


def test_dynamic_batch_axis_is_symbolic():
    import nnet.onnx

    onnx_model = nnet.onnx.export(mlp((8, 8, 1)), images(1, 8, 8, 1))
    for value in (onnx_model.graph.input[0], onnx_model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and all(d.dim_value > 0 for d in dims[1:])


def test_transposes_only_at_the_edges_of_runs_of_nchw_ops():
    """Conv then pool share one pair of transposes; ONNX Runtime moves the rest."""
    import nnet.onnx

    onnx_model = nnet.onnx.export(seed_cnn((28, 28, 1)), images(1, 28, 28, 1))
    ops = [n.op_type for n in onnx_model.graph.node]
    assert ops[:4] == ["Transpose", "Conv", "MaxPool", "Transpose"]
    assert ops.count("Transpose") == 4


def test_several_inputs_and_outputs_with_names(tmp_path):
    import nnet.onnx

    from .roundtrip import assert_close, nnet_eval, run_onnx

    lin = nn.Linear(3, 2)

    def two(a, b):
        return lin(a) * b, a.sum(axis=1)

    a = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    b = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    path = tmp_path / "two.onnx"
    nnet.onnx.export(two, (a[:1], b[:1]), path, input_names=["a", "b"], output_names=["y", "s"])
    for got, want in zip(run_onnx(path, {"a": a, "b": b}), nnet_eval(two, a, b), strict=True):
        assert_close(got, want)
