"""Graph-lifetime warnings: recorded graphs kept alive across training or evaluation iterations.

The classic silent leak is ``total = total + loss`` (or ``outputs.append(model(x))``) in a loop: every
iteration's graph stays reachable from ``total``, with the arrays its operations saved. nnet looks for
it only at iteration boundaries, never per operation: each batch a :class:`~nnet.data.DataLoader`
yields and each ``optimizer.step()`` call :func:`at_boundary`, which scans the calling frame's
variables (and the first and last items of its lists, tuples and dicts). A tensor whose graph was
extended in this iteration and still reaches an unreleased operation recorded before the previous
boundary of the same kind is a graph growing across iterations; a list holding unreleased graphs
from both sides of that boundary is graphs accumulating. Either warns, once per place, naming the
variable and the line that extends it. ``backward()`` also warns when the graph it walks reaches back
past the latest ``optimizer.step()`` (a graph built across steps). Operations carry a creation number
(``Function.seq``), so "recorded before the boundary" is one comparison.

``set_graph_warnings(False)`` turns all of it off (the scan included), for this thread or task.

>>> import warnings, numpy as np, nnet
>>> from nnet.data import DataLoader, TensorDataset
>>> w = nnet.ones(2, requires_grad=True)
>>> total = 0
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     for (x,) in DataLoader(TensorDataset(np.ones((4, 2), np.float32))):
...         total = total + (w * x).sum()
>>> [type(c.message).__name__ for c in caught]
['GraphLifetimeWarning']
"""

from __future__ import annotations

import dis
import inspect
import linecache
import sys
import warnings
from bisect import bisect_left
from contextvars import ContextVar
from pathlib import Path
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnet.autograd.tensor import Tensor

STEP = "optimizer.step()"
BATCH = "DataLoader batch"
_enabled: ContextVar[bool] = ContextVar("nnet_graph_warnings", default=True)
_PACKAGE = str(Path(__file__).resolve().parents[1])
#: Nodes visited at most per variable, so a large graph costs a boundary no more than this.
MAX_VISITS = 64
#: The creation number at the latest boundary of each kind ("DataLoader batch", "optimizer.step()").
_marks: dict[str, int] = {}
#: The creation numbers at the latest optimizer steps, oldest first (a bounded window).
_steps: list[int] = []
_warned: set[tuple[str, int, str]] = set()
#: Whether ``frame.f_locals`` of a function is a cached dict snapshot (before PEP 667, Python 3.13).
_SNAPSHOT_LOCALS = sys.version_info < (3, 13)


class GraphLifetimeWarning(UserWarning):
    """Recorded graphs kept alive across iterations (see :mod:`nnet.autograd.lifetime`)."""


def set_graph_warnings(enabled: bool) -> bool:
    """Turn graph-lifetime warnings on or off (this thread or task); returns the previous setting.

    >>> previous = set_graph_warnings(False)
    >>> _ = set_graph_warnings(previous)
    """
    previous = _enabled.get()
    _enabled.set(bool(enabled))
    return previous


def spans_a_step(oldest: int, newest: int) -> bool:
    """Whether an ``optimizer.step()`` came between creation numbers ``oldest`` and ``newest``:
    the engine's test after a backward, cheap when it is false (the usual case)."""
    if not _steps or oldest > _steps[-1]:
        return False
    i = bisect_left(_steps, oldest)
    return i < len(_steps) and _steps[i] < newest


# The helpers below take the Tensor class as an argument: the engine imports this module while
# tensor.py is still loading, so it is imported when the first boundary is reached.


def _reaches_before(fn: Any, mark: int, tensor: type[Tensor]) -> bool:
    """Whether node ``fn`` (recorded after ``mark``) reaches an unreleased node created before it."""
    if fn is None or fn.inputs is None or fn.seq < mark:
        return False
    queue, seen = [fn], {id(fn)}
    for node in queue:
        if node.seq < mark:
            return True
        if len(queue) >= MAX_VISITS:
            return False
        for p in node.inputs or ():
            q = p.grad_fn if isinstance(p, tensor) else None
            if q is not None and q.inputs is not None and id(q) not in seen:
                seen.add(id(q))
                queue.append(q)
    return False


def _live(x: Any, tensor: type[Tensor]) -> int | None:
    """The creation number of ``x``'s unreleased node, or None."""
    fn = x.grad_fn if isinstance(x, tensor) else None
    return fn.seq if fn is not None and fn.inputs is not None else None


def _accumulates(items: Any, mark: int, tensor: type[Tensor]) -> bool:
    """A container holding unreleased graphs from both sides of ``mark`` (first and last item)."""
    if isinstance(items, dict):
        items = list(items.values())
    if len(items) < 2:
        return False
    first, last = _live(items[0], tensor), _live(items[-1], tensor)
    return first is not None and last is not None and first < mark <= last


def _extending_line(code: CodeType, name: str) -> int | None:
    """The line that extends ``name``: it both reads and stores it (``total = total + loss``,
    ``total += loss``) or calls its append/extend/insert; None when no line does (a variable
    computed from a growing one, such as a loss from a carried state, is not the culprit)."""
    loads: dict[int, bool] = {}
    candidates: list[int] = []
    previous = None
    for ins in dis.get_instructions(code):
        line = ins.positions.lineno if ins.positions else None
        if line is None:
            continue
        if ins.opname.startswith("LOAD_") and ins.argval == name:
            loads[line] = True
        elif ins.opname.startswith("STORE_") and ins.argval == name and loads.get(line):
            candidates.append(line)
        elif (
            ins.opname in ("LOAD_METHOD", "LOAD_ATTR")
            and ins.argval in ("append", "extend", "insert")
            and previous is not None
            and previous.argval == name
        ):
            candidates.append(line)
        previous = ins
    return candidates[-1] if candidates else None


def _user_frame(frame: FrameType | None) -> FrameType | None:
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
    return frame


def _warn(frame: FrameType, line: int, name: str, message: str) -> None:
    filename = frame.f_code.co_filename
    key = (filename, line, name)
    if key in _warned:
        return
    _warned.add(key)
    source = linecache.getline(filename, line).strip()
    where = f"{filename}, line {line}" + (f": {source}" if source else "")
    warnings.warn_explicit(
        f"{message}\n  {where}\nIt holds every iteration's operations and the arrays they saved, "
        "so memory grows until the process dies. Keep a number instead (total += loss.item()), or "
        "loss.detach(); evaluate inside `with nnet.no_grad():`. "
        "nnet.autograd.set_graph_warnings(False) turns this check off.",
        GraphLifetimeWarning,
        filename,
        line,
        module=frame.f_globals.get("__name__", "__main__"),
        registry=frame.f_globals.setdefault("__warningregistry__", {}),
    )


def _local_items(frame: FrameType) -> list[tuple[str, Any]]:
    """The frame's variables, without keeping them alive after this call.

    Before Python 3.13, reading ``f_locals`` of a function's frame fills a dict that the frame keeps
    until its next read: a value the user then deletes (``del loss``) would stay alive until the next
    boundary, graph and saved arrays included. So the snapshot is emptied once read. Only a
    function's (optimized) frame has a snapshot; a module's or class body's ``f_locals`` is its real
    namespace and is left alone.
    """
    namespace = frame.f_locals
    items = list(namespace.items())
    if _SNAPSHOT_LOCALS and frame.f_code.co_flags & inspect.CO_OPTIMIZED:
        namespace.clear()
    return items


def at_boundary(kind: str, frame: FrameType | None) -> None:
    """An iteration boundary of ``kind`` reached from ``frame`` (the loop's frame, in user code)."""
    if not _enabled.get():
        return
    # loaded by now (a boundary comes after imports); looked up, not imported, on every call
    tensor = sys.modules["nnet.autograd.tensor"].Tensor
    mark = _marks.get(kind)
    next_seq = sys.modules["nnet.autograd.function"]._next_seq
    _marks[kind] = now = next_seq()
    if kind == STEP:
        _steps.append(now)
        if len(_steps) > 256:
            del _steps[:128]
    frame = _user_frame(frame)
    if mark is None or frame is None:
        return
    for name, value in _local_items(frame):
        # exact types, the cheapest tests: most of a frame's values are neither (a Parameter,
        # a Tensor subclass, is a leaf and holds no graph)
        cls = type(value)
        if cls is tensor:
            fn = value.grad_fn
            if fn is None or fn.inputs is None or not _reaches_before(fn, mark, tensor):
                continue
            how = "keeps a recorded graph growing"
        elif cls is list or cls is tuple or cls is dict:
            if not value or not _accumulates(value, mark, tensor):
                continue
            how = "accumulates recorded graphs"
        else:
            continue
        line = _extending_line(frame.f_code, name)
        if line is None:
            continue
        _warn(
            frame,
            line,
            name,
            f"`{name}` {how} across iterations ({kind} boundaries), at",
        )


def on_backward() -> None:
    """``backward()`` walked back past an ``optimizer.step()`` (see :func:`spans_a_step`)."""
    if not _enabled.get():
        return
    frame = _user_frame(sys._getframe(1))
    if frame is None:
        return
    _warn(
        frame,
        frame.f_lineno,
        "<backward>",
        "backward() ran over a graph built across optimizer.step() calls "
        "(part of it was recorded before the latest step, with the parameters' old values), at",
    )
