"""Every layer type of nnet.nn exported and run by ONNX Runtime: exported at batch 1, run at 1 and
37, equal to nnet's eval-mode outputs within 1e-5 of the largest output."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn

from .roundtrip import images, randomise_batch_norms, roundtrip

pytest.importorskip("onnxruntime")

IMAGE_LAYERS = {
    "conv3x3": lambda: nn.Conv2d(3, 5, 3),
    "conv_stride2": lambda: nn.Conv2d(3, 4, 3, stride=2),
    "conv_valid": lambda: nn.Conv2d(3, 4, 3, padding="valid"),
    "conv_even_same": lambda: nn.Conv2d(3, 4, 2),
    "conv_dilated": lambda: nn.Conv2d(3, 4, 3, dilation=2, padding=1),
    "conv_no_bias": lambda: nn.Conv2d(3, 4, (1, 3), bias=False),
    "maxpool": lambda: nn.MaxPool2d(2),
    "maxpool_overlapping_padded": lambda: nn.MaxPool2d(3, stride=1, padding=1),
    "maxpool_dilated": lambda: nn.MaxPool2d(2, stride=2, dilation=2),
    "avgpool": lambda: nn.AvgPool2d(2),
    "avgpool_padded": lambda: nn.AvgPool2d(3, stride=2, padding=1),
    "avgpool_padded_excluded": lambda: nn.AvgPool2d(
        3, stride=2, padding=1, count_include_pad=False
    ),
    "batchnorm2d": lambda: nn.BatchNorm2d(3),
    "batchnorm2d_batch_stats": lambda: nn.BatchNorm2d(3, track_running_stats=False),
    "batchnorm2d_no_affine": lambda: nn.BatchNorm2d(3, affine=False),
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "softmax": nn.Softmax,
    "log_softmax": lambda: nn.LogSoftmax(axis=1),
    "dropout": lambda: nn.Dropout(0.5),
    "identity": nn.Identity,
    "flatten": nn.Flatten,
    "conv_relu_pool_bn": lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4)
    ),
    "conv_bn_relu_pool": lambda: nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)
    ),
}

VECTOR_LAYERS = {
    "linear": lambda: nn.Linear(6, 4),
    "linear_no_bias": lambda: nn.Linear(6, 4, bias=False),
    "batchnorm1d": lambda: nn.BatchNorm1d(6),
    "mlp_with_dropout": lambda: nn.Sequential(
        nn.Linear(6, 8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 3), nn.LogSoftmax()
    ),
}


@pytest.mark.parametrize("name", sorted(IMAGE_LAYERS))
def test_image_layer(name, tmp_path):
    nnet.manual_seed(0)
    model = IMAGE_LAYERS[name]()
    randomise_batch_norms(model)
    roundtrip(model, images(1), [images(1, seed=1), images(37, seed=2)], tmp_path)


@pytest.mark.parametrize("name", sorted(VECTOR_LAYERS))
def test_vector_layer(name, tmp_path):
    nnet.manual_seed(0)
    model = VECTOR_LAYERS[name]()
    randomise_batch_norms(model)
    rows = np.random.default_rng(3).normal(size=(37, 6)).astype(np.float32)
    roundtrip(model, rows[:1], [rows[5:6], rows], tmp_path)


def test_linear_over_three_axes(tmp_path):
    nnet.manual_seed(0)
    x = np.random.default_rng(4).normal(size=(37, 5, 6)).astype(np.float32)
    onnx_model = roundtrip(nn.Linear(6, 4), x[:1], [x], tmp_path)
    assert [n.op_type for n in onnx_model.graph.node] == ["MatMul", "Add"]


def test_conv_weight_is_transposed_once_at_export(tmp_path):
    """The kernel is an OIHW initializer, not a Transpose node of the HWIO one."""
    nnet.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3)
    onnx_model = roundtrip(conv, images(1), [images(4, seed=1)], tmp_path)
    weights = {i.name: tuple(i.dims) for i in onnx_model.graph.initializer}
    assert weights["weight_oihw"] == (5, 3, 3, 3)
    ops = [n.op_type for n in onnx_model.graph.node]
    assert ops == ["Transpose", "Conv", "Transpose"]


def test_dropout_disappears_in_eval_mode_and_training_mode_is_restored(tmp_path):
    import nnet.onnx

    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    onnx_model = nnet.onnx.export(model, np.ones((1, 4), np.float32))
    assert [n.op_type for n in onnx_model.graph.node] == ["Gemm"]
    assert model.training and model[1].training


def test_batch_norm_running_stats_do_not_move_during_export(tmp_path):
    import nnet.onnx

    bn = nn.BatchNorm2d(3)
    randomise_batch_norms(bn)
    before = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    nnet.onnx.export(bn, images(2))
    assert np.array_equal(bn.running_mean.numpy(), before[0])
    assert np.array_equal(bn.running_var.numpy(), before[1])
    assert int(bn.num_batches_tracked.data) == 0
