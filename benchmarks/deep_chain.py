"""deep_chain: backward time of chains of 10^4, 10^5 and 10^6 ops, and how it grows.

The chain is overhead.py's (h = h * a; h = h + b on 16 float32 values, a and b constant tensors),
built untimed; only ``h.sum().backward()`` is timed, once per build. A linear engine takes 10x as long
for 10x the ops; the target (issues 2 and 5) is at most 12x from 10^4 to 10^5 and from 10^5 to 10^6
(a recursive traversal dies here; a quadratic one shows up in the growth). Each side's chain is built
and freed before the next side's, with the usual pause between sides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.overhead import record_tape
from benchmarks.results import Row
from benchmarks.timing import Config, describe_error, ensure_repo_on_path, load_torch, pause

ensure_repo_on_path()

NAME = "deep_chain"
TITLE = "backward of 10^4, 10^5, 10^6-op chains: time and growth (linear means 10x per 10x)"
SIZES = (10**4, 10**5, 10**6)


def _numpy_build(x: np.ndarray, a: np.ndarray, b: np.ndarray, pairs: int) -> Callable[[], object]:
    h, tape = record_tape(x, a, b, pairs)

    def backward() -> object:
        g = np.ones_like(h)
        while tape:  # consumed, as an engine frees its graph
            g = tape.pop()(g)
        return g

    return backward


def _lib_build(
    lib: str, x: np.ndarray, a: np.ndarray, b: np.ndarray, pairs: int
) -> Callable[[], object]:
    if lib == "torch":
        torch, _ = load_torch()
        xt = torch.tensor(x, requires_grad=True)
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
    else:
        import nnet

        xt = nnet.Tensor(x.copy(), requires_grad=True)
        at, bt = nnet.Tensor(a), nnet.Tensor(b)
    h: Any = xt
    for _ in range(pairs):
        h = h * at
        h = h + bt
    root = h.sum()
    del h
    return lambda: root.backward()


def run(cfg: Config) -> list[Row]:
    rng = np.random.default_rng(0)
    x = rng.random(16, dtype=np.float32)
    a = np.full(16, 1.0000001, np.float32)
    b = np.full(16, 1e-7, np.float32)
    sides = ["nnet", "numpy", "torch"]
    errors: dict[str, str] = {}
    torch, why = load_torch()
    if torch is None:
        errors["torch"] = why or "not available"
    reps = {10**4: 3, 10**5: 2, 10**6: 1} if cfg.quick else {10**4: 7, 10**5: 3, 10**6: 2}
    times: dict[str, dict[int, list[float]]] = {s: {n: [] for n in SIZES} for s in sides}
    forward: dict[str, dict[int, float]] = {s: {} for s in sides}
    for n in SIZES:
        for r in range(reps[n]):
            order = sides[r % 3 :] + sides[: r % 3]
            for side in order:
                if side in errors:
                    continue
                pause(cfg.switch_sleep)
                try:
                    t0 = time.perf_counter()
                    if side == "numpy":
                        backward = _numpy_build(x, a, b, n // 2)
                    else:
                        backward = _lib_build(side, x, a, b, n // 2)
                    forward[side][n] = time.perf_counter() - t0
                    pause(0.0)  # collect the forward's garbage before timing
                    t0 = time.perf_counter()
                    backward()
                    times[side][n].append(time.perf_counter() - t0)
                except Exception as exc:
                    errors[side] = describe_error(exc)
                finally:
                    backward = None  # type: ignore[assignment]
    med = {
        s: {n: float(np.median(v)) for n, v in times[s].items() if v}
        for s in sides
        if s not in errors
    }
    rows = []
    for n in SIZES:
        row = Row(NAME, f"backward, 10^{len(str(n)) - 1}-op chain", "ms")
        for s in sides:
            t = med.get(s, {}).get(n)
            row.values[s] = None if t is None else t * 1e3
            if t is None:
                row.notes[s] = errors.get(s, "not measured")
            else:
                row.detail[s] = {
                    "backward_s": times[s][n],
                    "forward_s": forward[s].get(n),
                    "backward_us_per_op": t / n * 1e6,
                }
        rows.append(row)
    for lo, hi in ((10**4, 10**5), (10**5, 10**6)):
        row = Row(
            NAME,
            f"growth 10^{len(str(hi)) - 1} / 10^{len(str(lo)) - 1}",
            "x",
            target="nnet <= 12x",
            bounds=[("value", 12.0)],
        )
        for s in sides:
            m = med.get(s, {})
            ok = lo in m and hi in m
            row.values[s] = m[hi] / m[lo] if ok else None
            if not ok:
                row.notes[s] = errors.get(s, "not measured")
        rows.append(row)
    return rows


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
