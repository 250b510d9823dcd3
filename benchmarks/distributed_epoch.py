"""distributed_epoch: one seed-protocol MNIST epoch, data-parallel on 2 ranks against one process.

The seed network, Adam lr 1e-3, global batch 100, over the 5,000 training images of
../shared/data/mnist (50 steps), trained through nnet.train.loop.train_epoch as ``nnet train`` does.
Configurations, each a fresh subprocess so thread pools and MPI start clean:

* ``1 process x 1 thread`` and ``1 process x 2 threads`` (``NNET_NUM_THREADS``);
* ``2 ranks x 1 thread`` (``mpiexec -n 2``; DistributedDataParallel, SyncBatchNorm, each rank 50
  images a step: what ``mpiexec -n 2 nnet train`` runs);
* ``2 ranks x 1 thread, local BN``: the same with per-rank batch norm, to show what syncing costs;
* ``2 ranks, no communication``: each rank trains its own model on its 50 images of each batch,
  meeting the other only at the epoch's barriers: the most that this machine's two cores give two
  processes at once (caches, memory, the hypervisor), whatever the distributed code does;
* ``1 process x 1 thread, batch 50``: one process trains the same epoch in batches of 50, a
  rank's share of each step, alone on the machine: twice its step time over the one-process
  step at batch 100 is what 2 ranks reach at most, if two processes ran side by side as fast as
  one alone and the ranks never waited (printed below the table).

Each run trains ``--epochs`` epochs after one warm-up epoch and reports every epoch's time (rank 0,
between barriers); the figure is the median over all epochs of all rounds, the configurations
rotated each round with a pause between runs. Throughput is images per second; the ratio is
against one process at one thread; "per round" is the range of that ratio taken within each round.
Target (issue 13): 2 ranks >= 1.6x one process at one thread.
The CPU column is the CPU time of an epoch summed over the ranks (waits at barriers excluded), and
"bound" is ranks x (one process's CPU time / this CPU time): the speed-up that idle cores would give
at most, which a shared machine's load does not hide the way it hides wall time.

    python -m benchmarks.distributed_epoch [--rounds 3] [--epochs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# ../shared/data/mnist beside the repository (or beside the folder of worktrees holding it)
DATA = next((p / "shared" / "data" / "mnist" for p in Path(__file__).resolve().parents[1:4]
             if (p / "shared" / "data" / "mnist").is_dir()), Path("../shared/data/mnist"))  # fmt: skip
CONFIGS = {
    "1 process x 1 thread": (1, 1, True),
    "1 process x 2 threads": (1, 2, True),
    "2 ranks x 1 thread": (2, 1, True),
    "2 ranks x 1 thread, local BN": (2, 1, False),
    "2 ranks, no communication": (2, 1, None),
    "1 process x 1 thread, batch 50": (1, 1, True),
}
#: The configuration that trains in batches of 50 (one rank's share of the global batch of 100)
HALF = "1 process x 1 thread, batch 50"


def worker(epochs: int, sync_bn: bool | None, batch: int = 100) -> None:
    """Train 1 + ``epochs`` epochs in this process (a rank when under mpiexec; ``sync_bn`` None:
    a model of its own, not wrapped); rank 0 prints the timed epochs' seconds as JSON."""
    import numpy as np

    import nnet
    from nnet import distributed, nn
    from nnet.data import DataLoader
    from nnet.train.data import load_data
    from nnet.train.loop import train_epoch
    from nnet.train.models import seed_cnn

    world, rank = distributed.init(), distributed.rank()
    train_set, _ = load_data("mnist", str(DATA))
    nnet.manual_seed(0)
    model = net = seed_cnn((28, 28, 1))
    if world > 1 and sync_bn is not None:
        if sync_bn:
            net = distributed.convert_sync_batchnorm(net)
        model = distributed.DistributedDataParallel(net, broadcast_buffers=not sync_bn)
    optimizer = nnet.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train_set, batch_size=batch, shuffle=True)
    times, cpu = [], []
    for epoch in range(epochs + 1):
        distributed.barrier()
        start, start_cpu = time.perf_counter(), time.process_time()
        train_epoch(model, loader, optimizer, nn.CrossEntropyLoss(), epoch, True, (rank, world))
        used = time.process_time() - start_cpu  # before the barrier: its wait is not work
        distributed.barrier()
        times.append(time.perf_counter() - start)
        cpu.append(float(distributed.all_reduce(np.array([used]))[0]))  # summed over ranks
    if rank == 0:
        print(json.dumps({"seconds": times[1:], "cpu": cpu[1:], "images": len(train_set)}))


def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else "mpiexec"


def run_config(name: str, epochs: int) -> dict[str, object]:
    ranks, threads, sync_bn = CONFIGS[name]
    bn = {True: [], False: ["--local-bn"], None: ["--independent"]}[sync_bn]
    cmd = [sys.executable, "-m", "benchmarks.distributed_epoch", "--worker",
           "--epochs", str(epochs), *bn, "--batch", "50" if name == HALF else "100"]  # fmt: skip
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks), *cmd]
    env = {**os.environ, "NNET_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per run")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--local-bn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--independent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated configuration numbers (1-based) to run")
    args = parser.parse_args()
    if args.worker:
        worker(args.epochs, None if args.independent else not args.local_bn, args.batch)
        return
    names = list(CONFIGS)
    if args.only:
        names = [names[int(i) - 1] for i in args.only.split(",")]
    seconds: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    rounds: list[dict[str, float]] = []  # each round's median epoch per configuration
    images = 0
    loads: list[float] = []
    for r in range(args.rounds):
        rounds.append({})
        for name in names[r % len(names) :] + names[: r % len(names)]:
            loads.append(os.getloadavg()[0])
            out = run_config(name, args.epochs)
            rounds[-1][name] = statistics.median(out["seconds"])  # type: ignore[arg-type]
            seconds[name] += out["seconds"]  # type: ignore[operator]
            cpu[name] += out["cpu"]  # type: ignore[operator]
            images = int(out["images"])  # type: ignore[call-overload]
            time.sleep(0.5)
    base = statistics.median(seconds[names[0]])
    print(f"one epoch, {images} images, seed CNN, Adam, global batch 100 "
          f"(median of {args.rounds} rounds x {args.epochs} epochs; shared 2-core machine; "
          f"1-minute load average {min(loads):.2f}-{max(loads):.2f} at the runs' starts)")  # fmt: skip
    print(f"{'configuration':32} {'epoch s':>8} {'images/s':>9} {'vs 1x1':>7}  {'quartiles s':12}"
          f" {'CPU s':>6} {'bound':>6}  {'per round':>11}")  # fmt: skip
    table = {}
    base_cpu = statistics.median(cpu[names[0]])
    for name in names:
        s = sorted(seconds[name])
        med, med_cpu = statistics.median(s), statistics.median(cpu[name])
        q1, q3 = s[len(s) // 4], s[(3 * len(s)) // 4]
        # What idle cores would give at most: the work (CPU seconds, all ranks) spread evenly over
        # the processes, every wait for another rank free. Load hides in wall time, not in this.
        ranks = CONFIGS[name][0]
        bound = ranks * base_cpu / med_cpu
        # The ratio within each round (the configurations run minutes apart at most), whose spread
        # shows how far the machine moved between rounds: the load moves the one-process run, which
        # shares the cores with other work, more than the ranks, which take both cores under chrt.
        paired = sorted(r[names[0]] / r[name] for r in rounds)
        table[name] = {"median_s": med, "q1_s": q1, "q3_s": q3, "all_s": s, "cpu_s": med_cpu,
                       "round_ratios": paired}  # fmt: skip
        print(f"{name:32} {med:8.3f} {images / med:9.0f} {base / med:6.2f}x  "
              f"{q1:.3f}-{q3:.3f}  {med_cpu:6.3f} {bound:5.2f}x  "
              f"{paired[0]:.2f}-{paired[-1]:.2f}x")  # fmt: skip
    if HALF in table and names[0] == "1 process x 1 thread":
        # 2 ranks take 50 steps of 50 images: half the epoch that one process takes in 100 of them
        print(f"2 ranks at most (one process's epoch at batch 100 over half its epoch at batch "
              f"50): {2 * base / table[HALF]['median_s']:.2f}x")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
