"""overhead: the engine's cost per recorded op, on a chain too small for the arithmetic to matter.

h = x; 500 times: h = h * a; h = h + b; then h.sum().backward(), on 16-element float32 tensors; the
time of forward plus backward divided by the 1,000 ops. Two variants: ``a``, ``b`` constant tensors
(not requiring gradients), and ``a``, ``b`` Python floats. The NumPy floor is a minimal Python tape:
each op appends a VJP closure over its arrays, backward calls them in reverse. Target (issue 5):
at most 0.8x PyTorch's time per op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.results import Row, fill
from benchmarks.timing import Config, Setup, ensure_repo_on_path, load_torch, measure

ensure_repo_on_path()

NAME = "overhead"
TITLE = "engine cost per op: 500 x (mul, add) on 16 float32 values, forward + backward"
PAIRS = 500
OPS = 2 * PAIRS


def record_tape(
    x: np.ndarray, a: Any, b: Any, pairs: int
) -> tuple[np.ndarray, list[Callable[[np.ndarray], np.ndarray]]]:
    """The chain's forward as a minimal tape: its result and one VJP closure per op, in order."""
    tape: list[Callable[[np.ndarray], np.ndarray]] = []
    push = tape.append
    h = x
    for _ in range(pairs):
        h = h * a
        push(lambda g, a=a: g * a)
        h = h + b
        push(lambda g: g)
    return h, tape


def numpy_tape(x: np.ndarray, a: Any, b: Any, pairs: int) -> Callable[[], object]:
    """The floor for a Python engine: one closure per op on a list, replayed backwards."""

    def step() -> object:
        h, tape = record_tape(x, a, b, pairs)
        h.sum()
        g = np.ones_like(h)
        for vjp in reversed(tape):
            g = vjp(g)
        return g

    return step


def chain_step(leaf: Callable[[], Any], a: Any, b: Any, pairs: int) -> Callable[[], object]:
    """nnet's and PyTorch's chain: the same code, the libraries differ only in ``leaf``."""

    def step() -> object:
        x = leaf()
        h = x
        for _ in range(pairs):
            h = h * a
            h = h + b
        h.sum().backward()
        return x.grad

    return step


def sides(scalar: bool, pairs: int = PAIRS) -> tuple[dict[str, Setup | None], dict[str, str]]:
    rng = np.random.default_rng(0)
    x = rng.random(16, dtype=np.float32)
    a_np = np.full(16, 1.0001, np.float32)
    b_np = np.full(16, 1e-4, np.float32)
    av: Any = 1.0001 if scalar else a_np
    bv: Any = 1e-4 if scalar else b_np

    def nnet_setup() -> Callable[[], object]:
        import nnet

        a = av if scalar else nnet.Tensor(a_np)
        b = bv if scalar else nnet.Tensor(b_np)
        return chain_step(lambda: nnet.Tensor(x.copy(), requires_grad=True), a, b, pairs)

    def numpy_setup() -> Callable[[], object]:
        return numpy_tape(x, av, bv, pairs)

    out: dict[str, Setup | None] = {"nnet": nnet_setup, "numpy": numpy_setup, "torch": None}
    why = {}
    torch, reason = load_torch()
    if torch is None:
        why["torch"] = reason or "not available"
    else:

        def torch_setup() -> Callable[[], object]:
            a = av if scalar else torch.from_numpy(a_np)
            b = bv if scalar else torch.from_numpy(b_np)
            return chain_step(lambda: torch.tensor(x, requires_grad=True), a, b, pairs)

        out["torch"] = torch_setup
    return out, why


def run(cfg: Config) -> list[Row]:
    rows = []
    for scalar, label in ((False, "tensor operands"), (True, "Python-float operands")):
        s, why = sides(scalar)
        measured = measure(s, cfg, unavailable=why)
        row = Row(
            NAME,
            f"per op, {label}",
            "us/op",
            target="<= 0.8x PyTorch",
            bounds=[("torch", 0.8)],
        )
        rows.append(fill(row, measured, lambda t: t / OPS * 1e6))
    return rows


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
