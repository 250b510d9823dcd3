"""onnx_layout: what the NHWC <-> NCHW transposes at the edges of an exported model cost.

``nnet.onnx.export`` keeps nnet's NHWC layout at the model's input and puts a transpose on each
side of every NCHW operator (Conv, MaxPool); ONNX Runtime's optimiser cancels the pairs that meet,
leaving one transpose at the input and one before Flatten. This times, in ONNX Runtime, the seed
CNN as exported against the same graph fed NCHW images directly (its input transpose removed):
the difference is the most that folding the edge transposes away could buy. Batch 1000, one
intra-op thread. Needs the onnx extra.

    python -m benchmarks.onnx_layout
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import nnet_models
from benchmarks.common import batch
from benchmarks.timing import Config, measure


def _without_input_transpose(model: object) -> object:
    import onnx

    nchw = onnx.ModelProto()
    nchw.CopyFrom(model)  # type: ignore[arg-type]
    first = nchw.graph.node[0]
    assert first.op_type == "Transpose", "the export no longer starts with the input's transpose"
    for node in nchw.graph.node[1:]:
        for k, name in enumerate(node.input):
            if name == first.output[0]:
                node.input[k] = first.input[0]
    del nchw.graph.node[0]
    dims = nchw.graph.input[0].type.tensor_type.shape.dim
    h, w, c = (d.dim_value for d in dims[1:])
    dims[1].dim_value, dims[2].dim_value, dims[3].dim_value = c, h, w
    return nchw


def main() -> None:
    import onnx
    import onnxruntime as ort

    import nnet.onnx

    x, _ = batch((1000, 28, 28, 1))
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    model = nnet_models.seed_cnn()
    with tempfile.TemporaryDirectory() as folder:
        nhwc_path, nchw_path = Path(folder, "nhwc.onnx"), Path(folder, "nchw.onnx")
        exported = nnet.onnx.export(model, x[:1], nhwc_path)
        onnx.save(_without_input_transpose(exported), str(nchw_path))

        def side(path: Path, inputs: np.ndarray) -> Callable[[], Callable[[], object]]:
            def setup() -> Callable[[], object]:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                session = ort.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
                return lambda: session.run(None, {"input": inputs})

            return setup

        a = side(nhwc_path, x)()()
        b = side(nchw_path, x_nchw)()()
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6, atol=1e-6)  # type: ignore[index]
        got = measure({"nhwc": side(nhwc_path, x), "nchw": side(nchw_path, x_nchw)}, Config())
    medians = {k: m.stats.median * 1e3 for k, m in got.items() if m.stats is not None}
    print(f"as exported (NHWC input, transposes at the edges): {medians['nhwc']:.2f} ms")
    print(f"NCHW input, no input transpose:                    {medians['nchw']:.2f} ms")
    print(f"ratio: {medians['nhwc'] / medians['nchw']:.3f}")


if __name__ == "__main__":
    main()
