"""ONNX export: a model's eval-mode forward, traced from nnet's recorded graph, as an ONNX model.

Needs the ``onnx`` extra (``pip install -e ".[onnx]"``: onnx, and onnxruntime to run the result);
``import nnet`` never loads it. See docs/onnx.md.
"""

try:
    import onnx as _onnx
except ImportError as e:  # pragma: no cover - the test extra installs onnx
    raise ImportError(
        'nnet.onnx needs the onnx package: pip install -e ".[onnx]" (or pip install "nnet[onnx]")'
    ) from e

from nnet.onnx.export import export
from nnet.onnx.registry import CONVERTERS, ExportError, register

__all__ = ["CONVERTERS", "ExportError", "export", "register"]
