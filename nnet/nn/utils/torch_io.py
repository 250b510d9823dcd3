"""State dicts in PyTorch's names and layouts, and back, without importing torch.

nnet and PyTorch name parameters and buffers the same way; three things differ, and these functions
convert them:

* Linear weights: nnet (in, out), PyTorch (out, in);
* Conv2d kernels: nnet (KH, KW, C_in, C_out), PyTorch (C_out, C_in, KH, KW);
* a Linear layer after ``Flatten`` of an image: nnet flattens NHWC, so its input features come in
  (h, w, c) order, PyTorch's in (c, h, w) order. Name such layers in ``flatten_shapes`` with the
  (H, W, C) shape of the image they receive, and their weight columns are reordered.

BatchNorm parameters and buffers (``running_mean``, ``running_var``, ``num_batches_tracked``) are
the same in both.

>>> import nnet
>>> from nnet import nn
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
>>> state = nnet.nn.utils.export_torch_state_dict(model, flatten_shapes={"2": (4, 4, 8)})
>>> state["0.weight"].shape, state["2.weight"].shape
((8, 3, 3, 3), (10, 128))
>>> nnet.nn.utils.import_torch_state_dict(model, state, flatten_shapes={"2": (4, 4, 8)})
IncompatibleKeys(missing_keys=[], unexpected_keys=[])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnet.nn.conv import Conv2d
from nnet.nn.linear import Linear
from nnet.nn.module import IncompatibleKeys, Module

FlattenShapes = Mapping[str, tuple[int, int, int]]


def _linear_to_torch(w: np.ndarray, image: tuple[int, int, int] | None) -> np.ndarray:
    if image is None:
        return w.T
    h, wd, c = image
    # rows in (h, w, c) order -> columns in (c, h, w) order
    return w.reshape(h, wd, c, -1).transpose(3, 2, 0, 1).reshape(w.shape[1], -1)


def _linear_from_torch(w: np.ndarray, image: tuple[int, int, int] | None) -> np.ndarray:
    if image is None:
        return w.T
    h, wd, c = image
    return w.reshape(-1, c, h, wd).transpose(2, 3, 1, 0).reshape(-1, w.shape[0])


def _check_image(name: str, module: Module, image: tuple[int, int, int] | None) -> None:
    if image is None:
        return
    if not isinstance(module, Linear):
        raise ValueError(
            f"flatten_shapes: '{name}' is a {type(module).__name__}, not a Linear layer"
        )
    if int(np.prod(image)) != module.in_features:
        raise ValueError(
            f"flatten_shapes: '{name}' receives {module.in_features} features, but the image shape "
            f"{tuple(image)} has {int(np.prod(image))}"
        )


def _convert(model: Module, state: Mapping[str, Any], flatten_shapes: FlattenShapes | None,
             to_torch: bool) -> dict[str, np.ndarray]:  # fmt: skip
    shapes = dict(flatten_shapes or {})
    modules = dict(model.named_modules())
    unknown = [k for k in shapes if k not in modules]
    if unknown:
        raise ValueError(f"flatten_shapes: no sub-module named {', '.join(map(repr, unknown))}")
    for name, image in shapes.items():
        _check_image(name, modules[name], image)
    out = {}
    for key, value in state.items():
        array = np.asarray(value)
        owner, _, attr = key.rpartition(".")
        module = modules.get(owner)
        if attr == "weight" and isinstance(module, Linear) and array.ndim == 2:
            convert = _linear_to_torch if to_torch else _linear_from_torch
            array = convert(array, shapes.get(owner))
        elif attr == "weight" and isinstance(module, Conv2d) and array.ndim == 4:
            array = array.transpose(3, 2, 0, 1) if to_torch else array.transpose(2, 3, 1, 0)
        out[key] = np.asarray(array, order="C")
    return out


def export_torch_state_dict(
    model: Module, flatten_shapes: FlattenShapes | None = None
) -> dict[str, np.ndarray]:
    """``model``'s state as NumPy arrays in PyTorch's names and layouts, ready for
    ``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})``.

    ``flatten_shapes`` maps the name of each Linear layer that receives a flattened image to that
    image's (H, W, C) shape, so its weight matches PyTorch's (c, h, w) flattening order.
    """
    return _convert(model, model.state_dict(), flatten_shapes, to_torch=True)


def import_torch_state_dict(
    model: Module,
    state_dict: Mapping[str, Any],
    flatten_shapes: FlattenShapes | None = None,
    strict: bool = True,
) -> IncompatibleKeys:
    """Load a PyTorch state dict (arrays, or CPU tensors, which convert with ``np.asarray``) into
    ``model``, converting layouts as :func:`export_torch_state_dict` describes, then
    :meth:`Module.load_state_dict` with its checks."""
    return model.load_state_dict(
        _convert(model, state_dict, flatten_shapes, to_torch=False), strict
    )
