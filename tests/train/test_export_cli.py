"""``nnet export --checkpoint run.npz --onnx model.onnx``: the trained model, run by ONNX Runtime,
gives nnet's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnet
from nnet.train.checkpoint import load_checkpoint
from nnet.train.data import load_data
from nnet.train.models import build_model

pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")


@pytest.mark.parametrize("model", ["mlp", "seed-cnn"])
def test_export_a_trained_checkpoint(model, nnet_cli, tmp_path: Path) -> None:
    import onnxruntime as ort

    ckpt, out = tmp_path / "run.npz", tmp_path / "model.onnx"
    run = nnet_cli("train", "--model", model, "--epochs", "1", "--quiet", "--checkpoint", str(ckpt))
    assert run.status == 0, run.err
    run = nnet_cli("export", "--checkpoint", str(ckpt), "--onnx", str(out))
    assert run.status == 0, run.err
    assert f"Wrote {out}" in run.out and "(batch, 8, 8, 1)" in run.out
    _, test_set = load_data("digits")
    images = test_set.arrays[0][:37]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": images})
    net = build_model(model, (8, 8, 1))
    net.load_state_dict(load_checkpoint(ckpt)["model"])
    net.eval()
    with nnet.no_grad():
        want = net(nnet.tensor(images)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_export_errors(nnet_cli, tmp_path: Path) -> None:
    run = nnet_cli("export", "--checkpoint", str(tmp_path / "none.npz"), "--onnx", "m.onnx")
    assert run.status == 1 and "does not exist" in run.err
