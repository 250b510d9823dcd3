"""threads_ab: one network's training step at several thread counts in one process, alternating, per
phase and per primitive: which parts gain from a second thread and which lose.

The thread count (``nnet.set_num_threads``) flips every ``--per`` steps, ``--rounds`` times, the
order reversed every other round, so drift of a shared host falls on every setting alike: separate
processes of one setting each differ far more than a few percent here. Each step is split into its
phases (zero_grad, forward, loss, backward, optimizer step) and, as ``benchmarks.primitives`` does,
into every primitive's forward and array VJP by input shape. Printed: the median and quartiles of
each in microseconds per step, and its median over the first setting's.

    flock /tmp/nnet-timing.lock chrt -f 10 python -m benchmarks.threads_ab seed
    python -m benchmarks.threads_ab seed --threads 1,2 --rounds 40 --per 4
    python -m benchmarks.threads_ab crpb --define-by-run --rounds 12 --per 3

Networks: those of ``benchmarks.primitives`` (seed, cbrp, crpb, crbp), in ``Sequential`` or, with
``--define-by-run``, called layer by layer from a ``Module.forward``.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from collections.abc import Callable
from typing import Any

import benchmarks  # noqa: F401  (pins the thread pools before NumPy work)
from benchmarks import layer_orders, nnet_models, primitives
from benchmarks.common import batch

PHASES = ("zero_grad", "forward", "loss", "backward", "optimizer")


def _step(network: str, define_by_run: bool) -> Callable[[dict[str, float]], None]:
    """A training step of ``network`` that adds each phase's wall time to the dict it is given."""
    import nnet

    order, channels, n, dropout = primitives.NETWORKS[network]
    x, y = batch((n, 28, 28, 1))
    nnet.manual_seed(0)
    build = layer_orders.nnet_define_by_run if define_by_run else layer_orders.nnet_sequential
    model = build(order, channels, dropout)
    opt = nnet_models.optim().Adam(model.parameters(), lr=1e-3)
    loss_fn = nnet_models.nn().CrossEntropyLoss()
    xt, yt = nnet_models.tensors(x, y)
    model.train()

    def step(times: dict[str, float]) -> None:
        marks = [time.perf_counter()]
        opt.zero_grad()
        marks.append(time.perf_counter())
        out = model(xt)
        marks.append(time.perf_counter())
        loss = loss_fn(out, yt)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        opt.step()
        marks.append(time.perf_counter())
        times["step"] = marks[-1] - marks[0]
        for phase, start, stop in zip(PHASES, marks, marks[1:], strict=False):
            times[f"phase {phase}"] = stop - start

    return step


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4)
    return q1, median, q3


def run(network: str, threads: list[int], rounds: int, per: int, warmup: int,
        define_by_run: bool) -> dict[int, dict[str, list[float]]]:  # fmt: skip
    """Per thread count, per timed name (step, phases, primitives), the seconds of each timed step."""
    import nnet

    totals: dict[str, float] = collections.defaultdict(float)
    primitives.instrument(totals)
    step = _step(network, define_by_run)
    data: dict[int, dict[str, list[float]]] = {t: collections.defaultdict(list) for t in threads}
    before = nnet.get_num_threads()
    try:
        for count in threads:
            nnet.set_num_threads(count)
            for _ in range(warmup):
                step({})
        for r in range(rounds):
            for count in threads if r % 2 == 0 else threads[::-1]:
                nnet.set_num_threads(count)
                step({})  # the first step after a switch starts the new count's workers
                for _ in range(per):
                    totals.clear()
                    times: dict[str, float] = {}
                    step(times)
                    for key, value in (*times.items(), *totals.items()):
                        data[count][key].append(value)
    finally:
        nnet.set_num_threads(before)
    return data


def report(data: dict[int, dict[str, list[float]]], title: str) -> None:
    threads = list(data)
    first = data[threads[0]]
    keys = sorted(first, key=lambda k: -statistics.median(first[k]))
    keys = ["step", *[k for k in keys if k.startswith("phase")], *[k for k in keys if " " in k
            and not k.startswith("phase")]]  # fmt: skip
    print(title)
    print(f"  {'us per step: median [quartiles] ratio':48s}" + "".join(
        f"{f'{t} thread(s)':>28s}" for t in threads))  # fmt: skip
    for key in keys:
        cols = [_quartiles(data[t].get(key) or [0.0]) for t in threads]
        base = cols[0][1]
        if max(c[1] for c in cols) < 5e-6:
            continue
        cells = "".join(
            f"  {1e6 * m:7.0f} [{1e6 * q1:6.0f}-{1e6 * q3:6.0f}] {m / base if base else 0:4.2f}"
            for q1, m, q3 in cols
        )
        print(f"  {key[:48]:48s}{cells}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", choices=sorted(primitives.NETWORKS))
    parser.add_argument("--threads", default="1,2", help="thread counts to alternate (default 1,2)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per", type=int, default=4, help="timed steps per setting and round")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per setting first")
    parser.add_argument("--define-by-run", action="store_true",
                        help="the layers called one by one from a Module.forward")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads takes comma-separated counts such as 1,2, got {args.threads!r}")
    if any(t < 1 for t in threads) or len(set(threads)) != len(threads):
        parser.error(f"--threads takes distinct positive counts, got {args.threads!r}")
    data = run(args.network, threads, max(1, args.rounds), max(1, args.per), max(0, args.warmup),
               args.define_by_run)  # fmt: skip
    import nnet

    info: dict[str, Any] = nnet.threads.blas_info()
    container = "define-by-run" if args.define_by_run else "Sequential"
    report(data, f"{args.network} ({container}): {args.rounds} rounds x {args.per} steps per "
                 f"setting, alternating; BLAS kernels {info.get('core')}")  # fmt: skip


if __name__ == "__main__":
    main()
