"""Teaching mode: the graph a lesson derives, in float64, with every number shown.

``with nnet.teaching():`` (or ``nnet.set_teaching(True)`` for the rest of a script or notebook)

* turns the fused kernels off (``nnet.kernels.use_fused(False)``), so a model's graph is the
  composition of primitives the lesson derives (``Conv2d`` as windows and a matmul, batch norm as its
  mean, variance and normalisation) and the layers run in their written order;
* makes float64 the default dtype, so ``tanh(0.8814)`` prints ``0.7071`` rather than ``0.70710665`` and
  hand-derived gradients match to the last digit;
* makes :func:`nnet.autograd.trace` and :mod:`nnet.viz` verbose (the values of tensors up to 16
  elements, 6 digits), and makes ``backward()`` keep for drawings every op's inputs and gradient
  whatever their size (outside teaching mode only those of up to 16 elements are kept) and leave
  every intermediate tensor's gradient in its ``.grad``, as micrograd does.

All three are context variables (each thread and async task has its own), restored when the block
ends.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

import numpy as np

from nnet.autograd.defaults import default_dtype, teaching_enabled
from nnet.kernels.mode import fused_enabled

_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)


def is_teaching() -> bool:
    """True inside ``nnet.teaching()`` or after ``nnet.set_teaching(True)``."""
    return teaching_enabled.get()


def _settings(enabled: bool) -> list[tuple[ContextVar[Any], Any]]:
    return [
        (teaching_enabled, enabled),
        (fused_enabled, not enabled),
        (default_dtype, _FLOAT64 if enabled else _FLOAT32),
    ]


class teaching:
    """Teaching mode inside a ``with`` block: no fusion, float64 by default, verbose traces.

    >>> import nnet
    >>> with nnet.teaching():
    ...     print(nnet.tensor(0.1).dtype, nnet.is_teaching())
    float64 True
    >>> nnet.tensor(0.1).dtype, nnet.is_teaching()
    (dtype('float32'), False)
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = bool(enabled)
        self._tokens: list[list[tuple[ContextVar[Any], Token[Any]]]] = []

    def __enter__(self) -> None:
        self._tokens.append([(var, var.set(value)) for var, value in _settings(self.enabled)])

    def __exit__(self, *exc: object) -> None:
        for var, token in reversed(self._tokens.pop()):
            var.reset(token)


def set_teaching(enabled: bool) -> None:
    """Teaching mode on or off from here on (in this thread or task): the global switch.

    Off means nnet's defaults: fused kernels on, float32. Use it in a notebook's first cell; use
    ``with nnet.teaching():`` to confine it to a block.

    >>> import nnet
    >>> nnet.set_teaching(True)
    >>> nnet.zeros(2).dtype
    dtype('float64')
    >>> nnet.set_teaching(False)
    """
    for var, value in _settings(bool(enabled)):
        var.set(value)
