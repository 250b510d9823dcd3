"""handoff: what handing work to nnet's worker threads costs, and the switch interval inside them.

Two measurements behind nnet/_team.py, alternated in rounds in one process (medians):

* ``handoff``: a two-block ``parallel_for`` whose blocks do nothing, and whose blocks each sum 128K
  floats, through nnet's team of workers against a ``ThreadPoolExecutor`` doing the same.
* ``switch``: the wide CNN's second block (Winograd conv 32 -> 64, batch norm, ReLU, 2x2 pool,
  batch 64 of 14x14) forward and array VJP at two threads with the team's switch interval at
  CPython's default 5 ms and at ``nnet._team.SWITCH_INTERVAL``, and at one thread.

Run it under the timing lock and realtime priority, as every timing here:

    flock /tmp/nnet-timing.lock chrt -f 10 python -m benchmarks.handoff [handoff] [switch]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

import benchmarks  # noqa: F401  (pins the thread pools before NumPy work)
from benchmarks.timing import ensure_repo_on_path

ensure_repo_on_path()

import nnet  # noqa: E402
from nnet import _team  # noqa: E402
from nnet.autograd.tensor import Tensor  # noqa: E402
from nnet.kernels.batchnorm import BatchStats  # noqa: E402
from nnet.kernels.convbn import WinogradBatchNormReluPool  # noqa: E402
from nnet.kernels.im2col import geometry  # noqa: E402


def _median_us(fn: Callable[[], object], n: int = 300) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[n // 10 :]) * 1e6


def handoff(rounds: int) -> None:
    pool, team = ThreadPoolExecutor(1), _team.Team(1)
    floats = np.ones(2**17, np.float32)

    def via_pool(task: Callable[[], object]) -> None:
        future = pool.submit(task)
        task()
        wait([future])
        future.result()

    def noop() -> None:
        return None

    sides: dict[str, list[float]] = {}
    for _ in range(rounds):
        for task_name, task in (("empty blocks", noop), ("128K-float sums", floats.sum)):
            sides.setdefault(f"ThreadPoolExecutor, {task_name}", []).append(
                _median_us(lambda t=task: via_pool(t))
            )
            sides.setdefault(f"nnet team, {task_name}", []).append(
                _median_us(lambda t=task: team.run(t, [t]))
            )
    one = _median_us(lambda: (floats.sum(), floats.sum()))
    for name, values in sides.items():
        print(f"  {name:38s} {statistics.median(values):7.1f} us")
    print(f"  {'both sums on the calling thread':38s} {one:7.1f} us")
    team.stop()
    pool.shutdown()


def _winograd_block() -> Callable[[], float]:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((64, 14, 14, 32)).astype(np.float32), requires_grad=True)
    w = Tensor((rng.standard_normal((3, 3, 32, 64)) * 0.1).astype(np.float32), requires_grad=True)
    gamma, beta = (Tensor(np.full(64, v, np.float32), requires_grad=True) for v in (1.0, 0.0))
    geo = geometry(x.shape, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    args: tuple[Any, ...] = (x, w, None, gamma, beta, 1e-5, BatchStats(), geo, (2, 2))
    grad = np.ones((64, 7, 7, 64), np.float32)

    def step() -> float:
        t0 = time.perf_counter()
        out = WinogradBatchNormReluPool.apply(*args)
        out.grad_fn.vjp_arrays(grad)
        return time.perf_counter() - t0

    return step


def switch(rounds: int) -> None:
    step = _winograd_block()
    before = (nnet.get_num_threads(), _team.SWITCH_INTERVAL)
    configs = {
        "1 thread": (1, _team.SWITCH_INTERVAL),
        "2 threads, switch interval 5 ms": (2, 5e-3),
        f"2 threads, switch interval {_team.SWITCH_INTERVAL * 1e3:g} ms": (
            2,
            _team.SWITCH_INTERVAL,
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    try:
        for _ in range(rounds):
            for name, (count, interval) in configs.items():
                nnet.set_num_threads(count)
                _team.SWITCH_INTERVAL = interval
                step()
                times[name] += [step() for _ in range(8)]
                time.sleep(0.05)
    finally:
        nnet.set_num_threads(before[0])
        _team.SWITCH_INTERVAL = before[1]
    for name, values in times.items():
        print(
            f"  Winograd block forward + VJP, {name:34s} {statistics.median(values) * 1e3:6.2f} ms"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", default=["handoff", "switch"])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    for what in args.what:
        print(what)
        {"handoff": handoff, "switch": switch}[what](args.rounds)


if __name__ == "__main__":
    main()
