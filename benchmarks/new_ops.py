"""new_ops: forward + backward of issue 18's compositions beside the NumPy floor (the same math with a
hand-written VJP) and PyTorch, to see what composing from primitives costs.

Not part of issue 5's table; run it alone: ``python -m benchmarks.new_ops [--quick]``.
Each figure is one forward and backward of a float32 batch in microseconds (lower is better).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.results import Row, fill, print_row, table
from benchmarks.timing import Config, Setup, ensure_repo_on_path, load_torch, measure

ensure_repo_on_path()

NAME = "new_ops"
TITLE = "issue 18's composed ops: forward + backward against a NumPy floor and PyTorch"
SHAPE = (256, 512)
_erf = np.frompyfunc(math.erf, 1, 1)


def _floor_gelu(x: np.ndarray, tanh: bool) -> Callable[[], object]:
    def step() -> object:
        if tanh:
            k = math.sqrt(2 / math.pi)
            t = np.tanh(k * (x + 0.044715 * x**3))
            y = 0.5 * x * (1 + t)
            g = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
        else:
            cdf = 0.5 * (1 + np.asarray(_erf(x * math.sqrt(0.5)), x.dtype))
            y = x * cdf
            g = cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return y, g

    return step


def _floor_prod(x: np.ndarray) -> Callable[[], object]:
    def step() -> object:
        y = np.prod(x, axis=1)
        return y, y[:, None] / x  # no zeros in the input: the division rule is exact here

    return step


def _floor_einsum(a: np.ndarray, b: np.ndarray) -> Callable[[], object]:
    def step() -> object:
        y = a @ b
        g = np.ones_like(y)
        return y, g @ b.swapaxes(-1, -2), a.swapaxes(-1, -2) @ g

    return step


CASES: dict[str, Any] = {
    "gelu (erf)": (lambda m, x: m.nn.functional.gelu(x), lambda x: _floor_gelu(x, False)),
    "gelu (tanh)": (lambda m, x: m.nn.functional.gelu(x, approximate="tanh"),
                    lambda x: _floor_gelu(x, True)),
    "prod over dim 1": (lambda m, x: m.prod(x, dim=1), _floor_prod),
    "einsum bij,bjk->bik": (lambda m, x: m.einsum("bij,bjk->bik", x.reshape(32, 64, 64),
                                                  x.reshape(32, 64, 64)),
                            lambda x: _floor_einsum(x.reshape(32, 64, 64), x.reshape(32, 64, 64))),
}  # fmt: skip


def _library_step(lib: Any, make: Callable[[], Any], fn: Any) -> Callable[[], object]:
    def step() -> object:
        x = make()
        fn(lib, x).sum().backward()
        return x.grad

    return step


def sides(case: str) -> tuple[dict[str, Setup | None], dict[str, str]]:
    fn, floor = CASES[case]
    # in (0.5, 1.5): no zeros for prod, products of 512 of them stay finite in float32
    x = np.random.default_rng(0).uniform(0.5, 1.5, SHAPE).astype(np.float32)
    if case.startswith("prod"):
        x = x[:, :64].copy()

    def nnet_setup() -> Callable[[], object]:
        import nnet

        return _library_step(nnet, lambda: nnet.Tensor(x.copy(), requires_grad=True), fn)

    out: dict[str, Setup | None] = {"nnet": nnet_setup, "numpy": lambda: floor(x), "torch": None}
    why = {}
    torch, reason = load_torch()
    if torch is None:
        why["torch"] = reason or "not available"
    else:
        out["torch"] = lambda: _library_step(torch, lambda: torch.tensor(x, requires_grad=True), fn)
    return out, why


def run(cfg: Config) -> list[Row]:
    rows = []
    for case in CASES:
        s, why = sides(case)
        row = Row(NAME, case, "us")
        rows.append(fill(row, measure(s, cfg, unavailable=why), lambda t: t * 1e6))
        print_row(rows[-1])
    return rows


if __name__ == "__main__":
    print(table(run(Config.make("--quick" in sys.argv))))
