"""What export refuses, and how it says so."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn

onnx_export = pytest.importorskip("nnet.onnx")
ExportError = onnx_export.ExportError
X = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)


def test_condition_computed_from_data_outside_the_graph():
    def odd(x):
        return nnet.where(x.data < -0.5, x, x * 2)  # not x > 0: no pattern export knows

    with pytest.raises(ExportError, match=r"where\(\).*condition computed from the input"):
        onnx_export.export(odd, X)


def test_constant_that_follows_the_batch_size():
    def scaled(x):
        return x * np.arange(x.shape[0] * 4, dtype=np.float32).reshape(-1, 4)

    with pytest.raises(ExportError, match=r"argument 1 of Mul .* changes with the input"):
        onnx_export.export(scaled, X)


def test_graph_that_depends_on_the_batch_size():
    def branchy(x):
        return x * 2 if x.shape[0] < 3 else x + 1

    with pytest.raises(ExportError, match=r"different ops.*dynamic_batch=False"):
        onnx_export.export(branchy, X)
    assert onnx_export.export(branchy, X, dynamic_batch=False) is not None


def test_output_not_a_tensor_or_not_from_the_input():
    with pytest.raises(ExportError, match="output 0 of the model is a float"):
        onnx_export.export(lambda x: 1.0, X)
    with pytest.raises(ExportError, match="does not depend on its input"):
        onnx_export.export(lambda x: nnet.ones(3) * 2, X)


def test_names_count_and_opset():
    model = nn.Linear(4, 2)
    with pytest.raises(ExportError, match="2 input_names for 1 inputs"):
        onnx_export.export(model, X, input_names=["a", "b"])
    with pytest.raises(ExportError, match="opset 11 is too old"):
        onnx_export.export(model, X, opset=11)


def test_scalar_input_has_no_batch_axis():
    with pytest.raises(ExportError, match="scalar, with no batch axis"):
        onnx_export.export(lambda x: x * 2, np.float32(3.0))


def test_nnet_imports_without_onnx():
    """``import nnet`` must not load onnx: a subprocess with onnx hidden still imports nnet."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import nnet, nnet.nn, nnet.train.cli\n"
        "try:\n    import nnet.onnx\nexcept ImportError as e:\n    print(e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'pip install -e ".[onnx]"' in run.stdout
