"""Small helpers from the seed library: `onehot`."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.defaults import get_default_dtype
from nnet.autograd.tensor import Tensor


def onehot(labels: Any, num_classes: int | None = None, dtype: Any = None) -> Tensor:
    """One-hot rows for integer class labels: shape ``labels.shape + (num_classes,)``.

    ``num_classes`` defaults to ``max(labels) + 1``; ``dtype`` to the default dtype (float32).

    >>> import nnet
    >>> nnet.nn.math.onehot([0, 2], 3).numpy()
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if y.dtype.kind not in "iu":
        if y.size and not np.array_equal(y, np.round(y)):
            raise ValueError(f"onehot: labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"onehot: labels must be in [0, {num_classes}), got values in [{y.min()}, {y.max()}]"
        )
    out = np.zeros((*y.shape, num_classes), dtype=get_default_dtype() if dtype is None else dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return Tensor(out)
