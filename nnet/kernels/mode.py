"""Fused fast paths on or off: a context variable, so each thread and async task has its own.

The layers in :mod:`nnet.nn.functional` take a fused primitive when its conditions hold and this mode
is on (the default); off, they run the composition of primitives that is the fused op's test oracle.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

fused_enabled: ContextVar[bool] = ContextVar("nnet_fused_enabled", default=True)


def is_fused_enabled() -> bool:
    """True when the layers may take their fused fast paths."""
    return fused_enabled.get()


class use_fused:
    """Turn the fused fast paths on or off inside a ``with`` block.

    >>> import numpy as np, nnet
    >>> import nnet.nn.functional as F
    >>> from nnet.kernels import use_fused
    >>> x = nnet.arange(16.0).reshape(1, 4, 4, 1)
    >>> with use_fused(False):  # the composition: windows, then a max over them
    ...     slow = F.max_pool2d(x, 2)
    >>> np.array_equal(F.max_pool2d(x, 2).numpy(), slow.numpy())
    True
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = bool(enabled)
        self._tokens: list[Token[bool]] = []

    def __enter__(self) -> None:
        self._tokens.append(fused_enabled.set(self.enabled))

    def __exit__(self, *exc: object) -> None:
        fused_enabled.reset(self._tokens.pop())
