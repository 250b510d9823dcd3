"""distributed_breakdown: where a rank's step of the seed protocol goes, phase by phase, and what
each of its collectives waits.

distributed_epoch's configurations (seed CNN, Adam, global batch 100 of ../shared/data/mnist), run
under ``mpiexec -n 2`` (or in one process with ``--ranks 1``), timed around each phase of the step
as ``nnet.train.loop.train_epoch`` runs it: loading this rank's rows of the global batch, the
forward, the loss, zero_grad, the backward (which holds SyncBatchNorm's backward all-reduces and
the gradient average), the optimizer step, the accuracy count. Every wait for MPI
(``nnet.distributed.comm.wait``) is timed too, by its place in the step, with the clock the ranks
share (CLOCK_MONOTONIC), so that the report can say, for each collective, how far apart the ranks
arrived (the slower rank's lead is the other's wait) and how long it took once both were there.

    python -m benchmarks.distributed_breakdown [--epochs 5] [--ranks 2] [--batch 100]
        [--mode sync|unmet|local|alone|lockstep|shifted]

``--ranks 1 --batch 50``: one process training on a rank's share, alone on the machine (the
reference for ``alone``, which runs two such processes side by side).

``--primitives``: also time each primitive's forward and VJP (every ``Function`` but the elementwise
ones, whose scalar fast path a wrapper would bypass) and the optimizer's step, per step (medians;
rank 0): with ``--ranks 1 --batch 1`` what a step costs whatever its batch.

``sync`` is ``mpiexec -n 2 nnet train``'s setup (SyncBatchNorm, DistributedDataParallel), ``unmet``
the same with SyncBatchNorm's sums kept local (its work without its four meetings), ``local``
per-rank batch norm under DDP (no buffer broadcast), ``alone`` each rank its own model, no DDP, and
``lockstep`` the same with a barrier after every step: what meeting once a step costs by itself,
``shifted`` the same barrier met by rank 1 after its forward and by rank 0 after its step (the
ranks half a step apart: whether running the same phase at once costs more than meeting).
Medians over the timed epochs' steps (one warm-up epoch first). Run it under the timing lock and
``chrt`` (in front of the launcher, so that both ranks are realtime).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.distributed_epoch import DATA, mpiexec

PHASES = ("load", "rows", "forward", "loss", "zero_grad", "backward", "step", "accuracy")
#: Rows reported inside the backward: the time in the callbacks the engine runs at its end, where
#: DistributedDataParallel averages a one-bucket model's gradients (filling this rank's slot of the
#: shared window, the barrier and the sum, the new ``.grad`` views), and of that the barrier and
#: the sum (``NodeSum.total``).
INNER = ("averaging", "barrier and sum")


def timed_primitives(record: dict[str, list[float]], optimizer: Any) -> None:
    """Add the time of every call of each non-elementwise primitive's forward and VJP, and of
    ``optimizer.step``, to ``record`` under its name (this step's calls)."""
    from nnet.autograd.function import Function

    def subclasses(cls: type) -> list[type]:
        return [c for s in cls.__subclasses__() for c in (s, *subclasses(s))]

    def wrap(owner: Any, name: str, label: str) -> None:
        untimed = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = untimed(*args, **kwargs)
            record.setdefault(label, []).append(time.perf_counter() - start)
            return result

        setattr(owner, name, timed)

    for cls in set(subclasses(Function)):
        if getattr(cls, "elementwise", False):
            continue
        for name in ("forward", "vjp", "vjp_arrays"):
            if name in cls.__dict__:
                wrap(cls, name, f"{cls.__name__}.{name}")
    wrap(optimizer, "step", f"{type(optimizer).__name__}.step")


def worker(mode: str, epochs: int, batch: int, out: str, primitives: bool = False) -> None:
    """Train under the timers; write this rank's figures as JSON to ``out``/rank<R>.json (a file
    each: two ranks' long lines on one stdout could interleave)."""

    import nnet
    from nnet import distributed, nn
    from nnet.autograd import leaf_hooks
    from nnet.data import DataLoader
    from nnet.distributed import comm
    from nnet.distributed.node_sum import NodeSum
    from nnet.train.data import load_data
    from nnet.train.models import seed_cnn

    world, rank = distributed.init(), distributed.rank()
    train_set, _ = load_data("mnist", str(DATA))
    nnet.manual_seed(0)
    model = net = seed_cnn((28, 28, 1))
    if world > 1 and mode not in ("alone", "lockstep", "shifted"):
        if mode in ("sync", "unmet"):
            net = distributed.convert_sync_batchnorm(net)
        if mode == "unmet":  # SyncBatchNorm's work, its sums kept local: no meeting
            from nnet.distributed import batchnorm_kernel

            batchnorm_kernel.node_sum = SimpleNamespace(all_reduce=lambda x: x)  # type: ignore[assignment]
        model = distributed.DistributedDataParallel(net, broadcast_buffers=False)
    optimizer = nnet.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train_set, batch_size=batch, shuffle=True)
    loss_fn = nn.CrossEntropyLoss()
    calls: dict[str, list[float]] = {}  # this step's primitive calls, when timed
    per_step: dict[str, list[float]] = {}
    if primitives:
        timed_primitives(calls, optimizer)
    waits: list[tuple[float, float]] = []  # (start, end) of every wait of the current step
    untimed = comm.wait

    def timed(*requests: Any) -> None:
        start = time.perf_counter()
        untimed(*requests)
        waits.append((start, time.perf_counter()))

    comm.wait = timed  # type: ignore[assignment]  # DDP and SyncBatchNorm call comm.wait
    untimed_for = getattr(comm, "wait_for", None)  # NodeSum's meeting (absent in older trees)

    def timed_for(done: Any) -> None:
        start = time.perf_counter()
        untimed_for(done)  # type: ignore[misc]
        waits.append((start, time.perf_counter()))

    if untimed_for is not None:
        comm.wait_for = timed_for  # type: ignore[assignment]
    averaging: list[float] = []  # this step's time in the backward's end callbacks
    untimed_end = leaf_hooks.run_backward_end

    def timed_end(leaf_ids: Any) -> None:
        start = time.perf_counter()
        untimed_end(leaf_ids)
        averaging.append(time.perf_counter() - start)

    leaf_hooks.run_backward_end = timed_end  # type: ignore[assignment]  # the engine's call
    summing: list[float] = []
    untimed_total = NodeSum.total

    def timed_total(self: NodeSum, out: Any, count: Any = None) -> Any:
        start = time.perf_counter()
        if count is None:  # the gradients' bucket (a count: SyncBatchNorm's small sums)
            result = untimed_total(self, out)
            summing.append(time.perf_counter() - start)
            return result
        return untimed_total(self, out, count)

    NodeSum.total = timed_total  # type: ignore[method-assign]
    phases: dict[str, list[float]] = {p: [] for p in (*PHASES, *INNER)}
    steps: list[list[tuple[float, float]]] = []
    for epoch in range(epochs + 1):
        distributed.barrier()
        batches = loader.shard_batches(rank, world) if world > 1 else iter(loader)
        while True:
            marks = [time.perf_counter()]
            try:
                batch = next(batches)
            except StopIteration:
                break
            marks.append(time.perf_counter())
            (x, y), _ = batch if world > 1 else (batch, None)  # only this rank's rows loaded
            waits.clear()
            calls.clear()
            averaging.clear()
            summing.clear()
            marks.append(time.perf_counter())
            logits = model(x)
            if mode == "shifted" and rank == 1:
                distributed.barrier()
            marks.append(time.perf_counter())
            loss = loss_fn(logits, y)
            loss.item()
            marks.append(time.perf_counter())
            optimizer.zero_grad()
            marks.append(time.perf_counter())
            loss.backward()
            marks.append(time.perf_counter())
            optimizer.step()
            if mode == "lockstep" or (mode == "shifted" and rank == 0):
                distributed.barrier()
            marks.append(time.perf_counter())
            int((logits.data.argmax(axis=1) == y.data).sum())
            marks.append(time.perf_counter())
            if epoch:
                for name, a, b in zip(PHASES, marks, marks[1:], strict=False):
                    phases[name].append(b - a)
                for label, times in calls.items():
                    per_step.setdefault(label, []).append(sum(times))
                phases["averaging"].append(sum(averaging))
                phases["barrier and sum"].append(sum(summing))
                steps.append(list(waits))
    comm.wait = untimed  # type: ignore[assignment]
    if untimed_for is not None:
        comm.wait_for = untimed_for  # type: ignore[assignment]
    leaf_hooks.run_backward_end = untimed_end  # type: ignore[assignment]
    NodeSum.total = untimed_total  # type: ignore[method-assign]
    figures = {name: statistics.median(v) for name, v in phases.items()}
    totals = [sum(t) for t in zip(*(phases[p] for p in PHASES), strict=True)]
    figures["total"] = statistics.median(totals)
    # an epoch is the steps' sum: the mean step, which the rare long stalls move, sets it
    figures["mean step"] = statistics.mean(totals)
    # a primitive not called in some steps counts 0 there
    counted = len(steps)
    primitive = {label: statistics.median(v + [0.0] * (counted - len(v)))
                 for label, v in per_step.items()}  # fmt: skip
    figures_json = json.dumps({"rank": rank, "phases": figures, "waits": steps,
                               "primitives": primitive})  # fmt: skip
    (Path(out) / f"rank{rank}.json").write_text(figures_json)


def report(outputs: list[dict[str, Any]]) -> None:
    print(f"{'phase (median us per step)':28}" + "".join(f"{'rank ' + str(o['rank']):>10}"
                                                       for o in outputs))  # fmt: skip
    primitives = outputs[0]["primitives"]
    for name in (*PHASES, "total", "mean step"):
        print(f"{name:28}" + "".join(f"{o['phases'][name] * 1e6:10.1f}" for o in outputs))
        for inner in INNER if name == "backward" else ():
            label = f"  of which {inner}"
            print(f"{label:28}" + "".join(f"{o['phases'][inner] * 1e6:10.1f}" for o in outputs))
    if primitives:
        print("primitives of rank 0 (median us per step; a step's calls summed):")
        for label, t in sorted(primitives.items(), key=lambda kv: -kv[1]):
            print(f"  {label:40} {t * 1e6:8.1f}")
        print(f"  {'all of the above':40} {sum(primitives.values()) * 1e6:8.1f}")
    if len(outputs) != 2 or not outputs[0]["waits"] or not outputs[0]["waits"][0]:
        return
    a, b = outputs[0]["waits"], outputs[1]["waits"]
    print("collectives in a step (medians over the steps, us): rank 0's wait, rank 1's wait, how "
          "far rank 1 arrived after rank 0, time from the later arrival to the first to finish")  # fmt: skip
    for i in range(min(len(s) for s in a)):
        pairs = [(s[i], t[i]) for s, t in zip(a, b, strict=False) if len(t) > i]
        w0 = statistics.median(p[0][1] - p[0][0] for p in pairs)
        w1 = statistics.median(p[1][1] - p[1][0] for p in pairs)
        lag = statistics.median(p[1][0] - p[0][0] for p in pairs)
        took = statistics.median(min(p[0][1], p[1][1]) - max(p[0][0], p[1][0]) for p in pairs)
        m0 = statistics.mean(p[0][1] - p[0][0] for p in pairs)
        m1 = statistics.mean(p[1][1] - p[1][0] for p in pairs)
        print(f"  #{i + 1}: {w0 * 1e6:8.1f} {w1 * 1e6:8.1f}   lag {lag * 1e6:7.1f}   took "
              f"{took * 1e6:6.1f}   means {m0 * 1e6:7.1f} {m1 * 1e6:7.1f}")  # fmt: skip
    for o in outputs:
        per_step = [sum(end - start for start, end in s) for s in o["waits"]]
        q = statistics.quantiles(per_step, n=10)
        print(f"rank {o['rank']} waits per step: mean {statistics.mean(per_step) * 1e6:.1f} us, "
              f"median {statistics.median(per_step) * 1e6:.1f}, 90th percentile "
              f"{q[8] * 1e6:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (after a warm-up)")
    parser.add_argument(
        "--mode", choices=("sync", "unmet", "local", "alone", "lockstep", "shifted"), default="sync"
    )
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100, help="the global batch (default 100)")
    parser.add_argument("--primitives", action="store_true",
                        help="also time each primitive's forward and VJP and the optimizer step")  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.mode, args.epochs, args.batch, args.out, args.primitives)
        return
    cmd = [sys.executable, "-m", "benchmarks.distributed_breakdown", "--worker",
           "--epochs", str(args.epochs), "--mode", args.mode, "--batch", str(args.batch),
           *(["--primitives"] if args.primitives else [])]  # fmt: skip
    if args.ranks > 1:
        cmd = [mpiexec(), "-n", str(args.ranks), *cmd]
    env = {**os.environ, "NNET_NUM_THREADS": "1"}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        cmd += ["--out", out]
        subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=True)
        outputs = [json.loads((Path(out) / f"rank{r}.json").read_text())
                   for r in range(args.ranks)]  # fmt: skip
    print(
        f"seed CNN, global batch {args.batch}, {args.ranks} process(es), mode {args.mode}, "
        f"{args.epochs} epochs; 1-minute load average {load:.2f} at the start"
    )
    report(outputs)


if __name__ == "__main__":
    main()
