"""Anomaly detection: the first NaN or infinity, in forward or backward, and the line that made it.

Inside ``with nnet.autograd.detect_anomaly():`` every operation checks its output as it runs,
records where in the user's code it was created, and checks the gradients its VJP returns when a
backward reaches it (even a backward started after the block: the check belongs to the operation).
The first NaN or infinity raises :class:`AnomalyError` naming the operation and that line.

Outside the block nothing is recorded. The mode is a context variable (per thread, per async task);
``Function.apply`` reads it once per operation and does nothing else when it is off.

>>> import numpy as np, nnet
>>> x = nnet.tensor([0.0, 1.0], requires_grad=True)
>>> with nnet.autograd.detect_anomaly(), np.errstate(divide="ignore"):
...     y = nnet.log(x)
Traceback (most recent call last):
...
nnet.autograd.anomaly.AnomalyError: detect_anomaly: Log produced -inf in its output ...
"""

from __future__ import annotations

import sys
import traceback
from contextvars import ContextVar, Token
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # function.py imports this module while tensor.py is still loading
    from nnet.autograd.tensor import Tensor

#: True inside ``detect_anomaly()``; read by ``Function.apply``.
anomaly_enabled: ContextVar[bool] = ContextVar("nnet_anomaly_enabled", default=False)
# True while a checked VJP runs: the ops inside it belong to that VJP, whose own check names it.
_inside_vjp: ContextVar[bool] = ContextVar("nnet_anomaly_inside_vjp", default=False)

_PACKAGE = str(Path(__file__).resolve().parents[1])


class AnomalyError(RuntimeError):
    """A NaN or infinity appeared in an operation's output or gradient under ``detect_anomaly()``.

    Attributes
    ----------
    op : str
        The operation's name (``Log``, ``Div``, ...).
    creation_stack : traceback.StackSummary
        Where the operation was created, innermost frame last.
    """

    def __init__(self, message: str, op: str, creation_stack: traceback.StackSummary) -> None:
        super().__init__(message)
        self.op = op
        self.creation_stack = creation_stack


class detect_anomaly:
    """Check every operation's output and every gradient for NaN and infinity inside the block.

    Slow (each operation records its creation stack and scans its arrays): for finding a bug,
    not for training runs.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = bool(enabled)
        self._tokens: list[Token[bool]] = []

    def __enter__(self) -> detect_anomaly:
        self._tokens.append(anomaly_enabled.set(self.enabled))
        return self

    def __exit__(self, *exc: object) -> None:
        anomaly_enabled.reset(self._tokens.pop())


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()``."""
    return anomaly_enabled.get()


def _bad(a: np.ndarray) -> str | None:
    """'nan', 'inf' or '-inf' for the non-finite values in ``a`` (NaN first); None if all finite."""
    if a.dtype.kind not in "fc" or np.isfinite(a).all():
        return None
    if np.isnan(a).any():
        return "nan"
    return "inf" if np.isposinf(a).any() else "-inf"


def _where(stack: traceback.StackSummary) -> str:
    """The innermost frame outside the nnet package: the user's line that created the op."""
    for frame in reversed(stack):
        if not frame.filename.startswith(_PACKAGE):
            code = f"\n    {frame.line}" if frame.line else ""
            return f"{frame.filename}, line {frame.lineno}, in {frame.name}{code}"
    return "inside nnet (no frame outside the package)"


def _count(a: np.ndarray) -> str:
    return f"{int((~np.isfinite(a)).sum())} of {a.size} elements"


def on_apply(ctx: Any, args: tuple[Any, ...], out: np.ndarray) -> None:
    """``Function.apply`` in anomaly mode: check the output, remember where, check the VJP later."""
    from nnet.autograd.tensor import Tensor

    if _inside_vjp.get():
        return
    stack = traceback.extract_stack(sys._getframe(1))
    kind = _bad(out)
    if kind is not None:
        inputs = [
            f"input {i} holds {k}"
            for i, a in enumerate(args)
            if (k := _bad(np.asarray(a.data if isinstance(a, Tensor) else a))) is not None
        ]
        cause = "; ".join(inputs) if inputs else "all its inputs were finite"
        raise AnomalyError(
            f"detect_anomaly: {ctx.name} produced {kind} in its output (shape {out.shape}, "
            f"{_count(out)}); {cause}. It was created at\n  {_where(stack)}",
            ctx.name,
            stack,
        )
    ctx.creation_stack = stack
    ctx.hook_vjp(_checked_vjp(ctx, ctx.vjp))


def _checked_vjp(ctx: Any, vjp: Any) -> Any:
    def vjp_checked(grad: Tensor) -> Any:
        stack = ctx.creation_stack
        kind = _bad(grad.data)
        if kind is not None:
            raise AnomalyError(
                f"detect_anomaly: the gradient arriving at {ctx.name} holds {kind} (shape "
                f"{grad.shape}, {_count(grad.data)}): the gradient passed to backward() is not "
                f"finite. {ctx.name} was created at\n  {_where(stack)}",
                ctx.name,
                stack,
            )
        token = _inside_vjp.set(True)
        try:
            grads = vjp(grad)
        finally:
            _inside_vjp.reset(token)
        for i, g in enumerate(grads if isinstance(grads, (tuple, list)) else (grads,)):
            if g is None or (kind := _bad(g.data)) is None:
                continue
            raise AnomalyError(
                f"detect_anomaly: the backward of {ctx.name} produced {kind} in the gradient for "
                f"its input {i} (shape {g.shape}, {_count(g.data)}) from a finite incoming "
                f"gradient. {ctx.name} was created at\n  {_where(stack)}",
                ctx.name,
                stack,
            )
        return grads

    return vjp_checked
