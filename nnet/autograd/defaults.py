"""The default floating dtype: what Python numbers, lists and the factories become (PyTorch's
``set_default_dtype``). A context variable, so each thread and async task has its own; float32 unless
set (``nnet.teaching()`` makes it float64)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import numpy as np

_FLOAT32 = np.dtype(np.float32)  # dtypes are immutable: a safe shared default
default_dtype: ContextVar[np.dtype] = ContextVar("nnet_default_dtype", default=_FLOAT32)


#: Teaching mode (``nnet.teaching()``): read by backward, traces and drawings (see nnet/teaching.py).
teaching_enabled: ContextVar[bool] = ContextVar("nnet_teaching", default=False)


def _floating(dtype: Any, what: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind != "f":
        raise TypeError(
            f"{what}: the default dtype must be a floating-point dtype (nnet.float32, nnet.float64), "
            f"got {dtype!r}"
        )
    return dt


def set_default_dtype(dtype: Any) -> None:
    """Make ``dtype`` the dtype of new floating tensors: ``nnet.tensor(1.0)``, ``nnet.zeros(3)``,
    layers' parameters. Integer data keeps its dtype.

    >>> import nnet
    >>> nnet.set_default_dtype(nnet.float64)
    >>> nnet.tensor([1.0, 2.0]).dtype, nnet.nn.Linear(2, 1).weight.dtype
    (dtype('float64'), dtype('float64'))
    >>> nnet.set_default_dtype(nnet.float32)
    """
    default_dtype.set(_floating(dtype, "set_default_dtype"))


def get_default_dtype() -> np.dtype:
    """The dtype new floating tensors get (float32 unless changed).

    >>> import nnet
    >>> nnet.get_default_dtype()
    dtype('float32')
    """
    return default_dtype.get()
