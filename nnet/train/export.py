"""``nnet export``: a training checkpoint's model written as an ONNX file (needs the onnx extra)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from nnet.train.checkpoint import load_checkpoint
from nnet.train.models import build_model

#: The (H, W, C) of each dataset's images: the model is rebuilt without loading the data.
IMAGE_SHAPES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion-mnist": (28, 28, 1)}


def add_parser(sub: Any) -> None:
    """The ``export`` subcommand's options."""
    e = sub.add_parser("export", help="write a checkpoint's model as an ONNX file")
    e.add_argument("--checkpoint", metavar="PATH", required=True)
    e.add_argument("--onnx", metavar="PATH.onnx", required=True, help="the file to write")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")


def run_export(args: argparse.Namespace) -> int:
    """Rebuild the checkpoint's model, load its weights and export its eval-mode forward."""
    try:
        import nnet.onnx
    except ImportError as e:
        print(f"nnet export: error: {e}", file=sys.stderr)
        return 1
    saved = load_checkpoint(args.checkpoint)
    config = saved["config"]
    shape = IMAGE_SHAPES[config["dataset"]]
    model = build_model(config["model"], shape)
    model.load_state_dict(saved["model"])
    try:
        nnet.onnx.export(model, np.zeros((1, *shape), np.float32), args.onnx, opset=args.opset)
    except (nnet.onnx.ExportError, OSError) as e:
        print(f"nnet export: error: {e}", file=sys.stderr)
        return 1
    h, w, c = shape
    print(f"Wrote {args.onnx}: {config['model']} ({config['dataset']}), input 'input' of shape "
          f"(batch, {h}, {w}, {c}) float32 NHWC, output 'output' (batch, 10) logits")  # fmt: skip
    return 0
