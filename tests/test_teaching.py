"""Teaching mode and the default dtype (nnet.teaching, nnet.autograd.defaults)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.autograd.ops import PRIMITIVES
from nnet.kernels import is_fused_enabled
from nnet.nn.math import onehot
from tests.gradtest import graph_nodes


@pytest.fixture
def float64_default():
    nnet.set_default_dtype(nnet.float64)
    yield
    nnet.set_default_dtype(nnet.float32)


def _floating_results():
    return {
        "tensor": nnet.tensor([1.0, 2.0]),
        "tensor of a float": nnet.tensor(0.1),
        "Tensor": nnet.Tensor([0.5]),
        "zeros": nnet.zeros(2),
        "ones": nnet.ones(2),
        "full": nnet.full(2, 3.0),
        "rand": nnet.rand(2),
        "randn": nnet.randn(2),
        "arange of floats": nnet.arange(0.0, 1.0, 0.5),
        "eye": nnet.eye(2),
        "Linear": nn.Linear(2, 3).weight,
        "Conv2d": nn.Conv2d(1, 2, 3).bias,
        "BatchNorm2d": nn.BatchNorm2d(2).running_var,
        "onehot": onehot([0, 1], 2),
    }


def test_the_default_dtype_is_float32():
    assert nnet.get_default_dtype() == np.float32
    for name, t in _floating_results().items():
        assert t.dtype == np.float32, name


def test_set_default_dtype_reaches_factories_tensor_and_layers(float64_default):
    assert nnet.get_default_dtype() == np.float64
    for name, t in _floating_results().items():
        assert t.dtype == np.float64, name
    # what is not a float, or already an array, keeps its dtype
    assert nnet.tensor([1, 2]).dtype == np.int64
    assert nnet.arange(3).dtype == np.int64
    assert nnet.Tensor(np.ones(2, np.float32)).dtype == np.float32
    assert nnet.zeros(2, dtype=np.float32).dtype == np.float32


def test_set_default_dtype_refuses_non_floating_dtypes():
    for bad in (np.int64, "bool", "cpu"):
        with pytest.raises(TypeError, match="set_default_dtype: the default dtype must be a float"):
            nnet.set_default_dtype(bad)
    assert nnet.get_default_dtype() == np.float32


def test_teaching_block_turns_fusion_off_and_float64_on_then_restores():
    assert not nnet.is_teaching() and is_fused_enabled()
    with nnet.teaching():
        assert nnet.is_teaching() and not is_fused_enabled()
        assert nnet.tensor(0.7).dtype == np.float64
        with nnet.teaching(False):
            assert not nnet.is_teaching() and is_fused_enabled()
            assert nnet.tensor(0.7).dtype == np.float32
        assert nnet.is_teaching()
    assert not nnet.is_teaching() and is_fused_enabled()
    assert nnet.tensor(0.7).dtype == np.float32


def test_the_global_switch_and_threads():
    seen = {}
    nnet.set_teaching(True)
    try:
        assert nnet.is_teaching() and nnet.get_default_dtype() == np.float64

        def worker():
            seen["dtype"] = nnet.get_default_dtype()
            seen["teaching"] = nnet.is_teaching()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    finally:
        nnet.set_teaching(False)
    assert seen == {"dtype": np.float32, "teaching": False}  # a context variable per thread
    assert not nnet.is_teaching() and is_fused_enabled()
    assert nnet.get_default_dtype() == np.float32


def test_teaching_mode_shows_the_composition_not_the_fused_kernels():
    nnet.manual_seed(0)

    def graph():
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4),
            nn.Flatten(), nn.Linear(4 * 4 * 4, 10),
        )  # fmt: skip
        x = nnet.randn(8, 8, 8, 1)
        loss = nn.CrossEntropyLoss()(model(x.to(nnet.get_default_dtype())), nnet.arange(8))
        return {type(n) for n in graph_nodes(loss)}

    fused = graph() - set(PRIMITIVES)
    assert fused, "outside teaching mode this model takes a fused kernel"
    with nnet.teaching():
        types = graph()
    assert types <= set(PRIMITIVES), types - set(PRIMITIVES)
