"""Export a model, run it in ONNX Runtime, and compare with nnet's eval-mode outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import nnet

#: ONNX Runtime against nnet: relative to the largest output, float32 (the issue's 1e-5)
RTOL = 1e-5


def run_onnx(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machine is shared; one thread is enough here
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def nnet_eval(model: Any, *xs: np.ndarray) -> list[np.ndarray]:
    if hasattr(model, "eval"):
        model.eval()
    with nnet.no_grad():
        out = model(*[nnet.tensor(x) for x in xs])
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale)


def roundtrip(model: Any, example: np.ndarray, runs: list[np.ndarray], tmp_path: Path,
              **options: Any) -> Any:  # fmt: skip
    """Export at ``example``'s batch, run ONNX Runtime on each of ``runs``, compare with nnet."""
    import nnet.onnx

    path = tmp_path / "model.onnx"
    onnx_model = nnet.onnx.export(model, example, path, **options)
    for x in runs:
        (got,) = run_onnx(path, {"input": x})
        (want,) = nnet_eval(model, x)
        assert_close(got, want)
    return onnx_model


def images(n: int, h: int = 8, w: int = 8, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype(np.float32)


def randomise_batch_norms(model: Any, seed: int = 1) -> None:
    """Running statistics away from (0, 1) and affine parameters away from (1, 0), so that an
    export that ignored them would fail."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nnet.nn.BatchNorm1d, nnet.nn.BatchNorm2d)):
            c = m.num_features
            if m.running_mean is not None:
                m.running_mean.data[:] = rng.normal(size=c)
                m.running_var.data[:] = rng.uniform(0.5, 2.0, size=c)
            if m.weight is not None:
                m.weight.data[:] = rng.uniform(0.5, 1.5, size=c)
                m.bias.data[:] = rng.normal(size=c)
