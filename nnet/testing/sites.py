"""Where each recorded operation came from, collected only while :func:`recording_sites` is active.

Capturing a stack on every operation would cost the hot path (``Function.apply``) a frame walk per
op. Instead this uses the interpreter's profile hook (``sys.setprofile``, this thread only): while the
block runs, each return from ``Function.apply`` (or ``apply1``, ``apply2``) hands over the new node,
the keyword parameters its forward was called with, and the calling frames. Outside the block the
engine runs exactly as always, with no flag to read; inside, a forward runs a few times slower.

>>> import nnet
>>> x = nnet.tensor([1.0, 2.0], requires_grad=True)
>>> with recording_sites() as sites:
...     y = x.sum(axis=0)
>>> sites[y.grad_fn].where.endswith("in <module>")  # this line, in the doctest's file
True
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor

_APPLY = Function.apply.__func__.__code__  # type: ignore[attr-defined]
# every class's apply1 and apply2 run these codes (function._unary_apply, _binary_apply)
_APPLIES = {_APPLY, Function.apply1.__code__, Function.apply2.__code__}
_PACKAGE = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class Site:
    """How and where a node was created.

    Attributes
    ----------
    params : dict
        The keyword parameters ``Function.apply`` passed to the node's forward (``axis=``, ...).
    where : str
        The innermost frame outside the nnet package: ``file, line N, in function``.
    via : str
        The frame that called ``apply`` (inside nnet for a layer's op), or "" when that is ``where``.
    """

    params: dict[str, Any]
    where: str
    via: str


def _frame_text(frame: FrameType) -> str:
    code = frame.f_code
    return f"{code.co_filename}, line {frame.f_lineno}, in {code.co_name}"


def _site(frame: FrameType) -> Site:
    caller = frame.f_back
    if caller is not None and caller.f_code is _APPLY:  # apply handing its operands to apply1/2
        caller = caller.f_back
    user = caller
    while user is not None and user.f_code.co_filename.startswith(_PACKAGE):
        user = user.f_back
    where = _frame_text(user) if user is not None else "inside nnet (no frame outside the package)"
    via = _frame_text(caller) if caller is not None and caller is not user else ""
    return Site(dict(frame.f_locals.get("params") or {}), where, via)


@contextmanager
def recording_sites() -> Iterator[dict[Function, Site]]:
    """Record a :class:`Site` for every node created in the block (this thread), keyed by node."""
    sites: dict[Function, Site] = {}
    previous = sys.getprofile()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code in _APPLIES and isinstance(arg, Tensor):
            fn = arg.grad_fn
            if fn is not None and fn is frame.f_locals.get("ctx"):
                sites[fn] = _site(frame)

    sys.setprofile(profile)
    try:
        yield sites
    finally:
        sys.setprofile(previous)
