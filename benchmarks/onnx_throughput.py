"""onnx_throughput: the seed network's inference in ONNX Runtime against nnet's, batch 1000.

nnet under ``nnet.no_grad()`` with ``model.eval()``; ONNX Runtime runs the same model exported by
``nnet.onnx.export`` (same weights, NHWC input, default graph optimisations, as many intra-op
threads as every other side). For the record, not a target: it tells a user what deploying buys.
Needs the onnx extra; without it the ONNX Runtime column says why.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import numpy as np

from benchmarks import THREADS, nnet_models
from benchmarks.common import batch
from benchmarks.results import Row, fill
from benchmarks.timing import Config, Setup, measure

NAME = "onnx_throughput"
TITLE = "seed network inference, ONNX Runtime against nnet under no_grad, batch 1000, img/s"
BATCH = 1000


def sides(x: np.ndarray, folder: str) -> tuple[dict[str, Setup | None], dict[str, str]]:
    import nnet

    model = nnet_models.seed_cnn()
    model.eval()
    why: dict[str, str] = {}
    path = os.path.join(folder, "seed_cnn.onnx")
    try:
        import onnxruntime as ort

        import nnet.onnx

        nnet.onnx.export(model, x[:1], path)
    except ImportError as e:
        ort = None
        why["onnxruntime"] = f'{e}; pip install -e ".[onnx]"'

    def nnet_setup() -> Callable[[], object]:
        xt = nnet.Tensor(x)

        def step() -> object:
            with nnet.no_grad():
                return model(xt)

        return step

    def ort_setup() -> Callable[[], object]:
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda: session.run(None, {"input": x})

    return {"nnet": nnet_setup, "onnxruntime": ort_setup if ort is not None else None}, why


def run(cfg: Config) -> list[Row]:
    x, _ = batch((BATCH, 28, 28, 1))
    with tempfile.TemporaryDirectory() as folder:
        s, why = sides(x, folder)
        measured = measure(s, cfg, unavailable=why)
    row = Row(NAME, "seed CNN inference, batch 1000, nnet (ORT in nnet/onnxruntime)", "img/s",
              higher_is_better=True, target="for the record")  # fmt: skip
    fill(row, {"nnet": measured["nnet"]}, lambda t: BATCH / t)
    m = measured["onnxruntime"]
    ort_rate = BATCH / m.stats.median if m.stats is not None else None
    nnet_rate = row.values.get("nnet")
    row.extra_ratios["onnxruntime"] = (
        nnet_rate / ort_rate if nnet_rate is not None and ort_rate else None
    )
    row.detail["onnxruntime_img_s"] = ort_rate
    if m.stats is None:
        row.notes["onnxruntime"] = m.error or "not available"
    else:
        row.detail["onnxruntime"] = {"median_s": m.stats.median, "p25_s": m.stats.p25,
                                     "p75_s": m.stats.p75, "steps": m.stats.n}  # fmt: skip
    return [row]


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
