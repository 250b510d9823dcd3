"""Graph-lifetime warnings: a loop that keeps every iteration's graph alive warns once, naming the
variable and its line; loops that release their graphs stay silent."""

from __future__ import annotations

import gc
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.autograd import GraphLifetimeWarning, lifetime, set_graph_warnings
from nnet.data import DataLoader, TensorDataset

rng = np.random.default_rng(0)
LOADER = DataLoader(
    TensorDataset(rng.standard_normal((24, 5)).astype(np.float32), rng.integers(0, 3, 24)),
    batch_size=6,
)


@pytest.fixture(autouse=True)
def fresh_places() -> None:
    """Each test sees every place as not yet warned about (the set is per process)."""
    lifetime._warned.clear()


LINES = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    return next(i for i, t in enumerate(LINES, 1) if t.rstrip().endswith(f"# {marker}"))


def setup() -> tuple[nn.Module, Any, nn.Module]:
    nnet.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, nnet.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()


def train_total() -> None:
    model, opt, loss_fn = setup()
    total = 0
    for x, y in LOADER:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        total = total + loss  # train_total


def eval_append() -> None:
    model, _, _ = setup()
    outputs = []
    for x, _ in LOADER:
        outputs.append(model(x))  # eval_append


def carried_state() -> None:
    """A state carried through the loop without detach(). Its recurrence weight is not stepped:
    one that is (a saved parameter changed in place) makes backward raise instead."""
    model, opt, _ = setup()
    decay = nnet.tensor(np.full(5, 0.5, np.float32), requires_grad=True)
    h = nnet.zeros((6, 5))
    for x, _ in LOADER:
        opt.zero_grad()
        h = nnet.tanh(h * decay + x)  # carried_state
        model(h).sum().backward(retain_graph=True)  # carried_backward
        opt.step()


def clean() -> None:
    model, opt, loss_fn = setup()
    total, outputs, h = 0.0, [], nnet.zeros((6, 3))
    for x, y in LOADER:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        total += loss.item()
        h = nnet.tanh(model(x).detach() + h)
    with nnet.no_grad():
        for x, _ in LOADER:
            outputs.append(model(x))


def caught(run: Callable[[], None], times: int = 1) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        for _ in range(times):
            run()
    return [w for w in found if w.category is GraphLifetimeWarning]


@pytest.mark.parametrize(
    ("run", "name", "marker"),
    [(train_total, "total", "train_total"), (eval_append, "outputs", "eval_append"),
     (carried_state, "h", "carried_state")],
)  # fmt: skip
def test_a_leaking_loop_warns_once_naming_its_line(run: Any, name: str, marker: str) -> None:
    found = [w for w in caught(run, times=2) if f"`{name}`" in str(w.message)]
    assert len(found) == 1
    w = found[0]
    assert (w.filename, w.lineno) == (__file__, line_of(marker))
    text = str(w.message)
    for words in (f"line {line_of(marker)}", "loss.item()", "detach()", "nnet.no_grad()",
                  "set_graph_warnings(False)"):  # fmt: skip
        assert words in text


def test_backward_over_a_graph_built_across_steps_warns() -> None:
    found = [w for w in caught(carried_state) if "backward() ran over" in str(w.message)]
    assert [(w.filename, w.lineno) for w in found] == [(__file__, line_of("carried_backward"))]


def test_loops_that_release_their_graphs_are_silent() -> None:
    assert caught(clean, times=2) == []


def test_the_switch_turns_it_off() -> None:
    previous = set_graph_warnings(False)
    try:
        assert caught(lambda: (train_total(), eval_append(), carried_state())) == []
    finally:
        set_graph_warnings(previous)
    assert previous is True


def test_the_scan_keeps_no_deleted_variable_alive() -> None:
    """Reading a function frame's variables must not keep them: before Python 3.13 ``f_locals`` is a
    snapshot dict the frame holds until its next read, so a deleted loss (with its graph) would live
    on until the next boundary."""
    w = nnet.ones(3, requires_grad=True)
    opt = nnet.optim.SGD([w], lr=0.1)

    def step() -> bool:
        loss = (w * nnet.ones(3)).sum()
        loss.backward()
        opt.step()  # a boundary: scans this frame
        ref = weakref.ref(loss)
        del loss
        gc.collect()
        return ref() is None  # checked while the frame is still running

    step()  # the first boundary may only set the mark; the second scans
    assert step()
