"""distributed_instructions: instructions per training step of the seed CNN, one process against
each rank of ``mpiexec -n 2``, counted by valgrind's callgrind: figures the machine's load cannot
move (wall and CPU time on a shared machine can), to say what two idle cores could give at most.

The step is distributed_epoch's (seed CNN, Adam, global batch 100 of ../shared/data/mnist, through
DistributedDataParallel with SyncBatchNorm, or with per-rank batch norm). Each configuration runs
``--steps`` more steps than a short run under callgrind; the difference, divided by the extra
steps, is a step's count, start-up and imports cancelled. The bound is
instructions(one process, batch 100) / instructions(one rank's step): the speed-up of 2 ranks if
the two cores ran as fast as one and no rank ever waited for the other.

Of 2 ranks only rank 1 runs under callgrind, rank 0 natively (``mpiexec``'s MPMD form): rank 0,
some 50x faster, is always first at every collective, so rank 1 finds each one complete or nearly
so and its count holds its work and hardly any polling (when both ran under callgrind they drifted
apart, and the count of whichever waited held thousands of polls). Rank 1 does what rank 0 does
but print. Needs valgrind.

    python -m benchmarks.distributed_instructions [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.distributed_epoch import DATA, mpiexec

STEPS = """
import sys
import nnet
from nnet import distributed, nn
from nnet.data import DataLoader
from nnet.train.data import load_data
from nnet.train.loop import train_epoch
from nnet.train.models import seed_cnn

mode, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
world, rank = distributed.init(), distributed.rank()
train_set, _ = load_data("mnist", sys.argv[4])
subset = nnet.data.Subset(train_set, range(steps * batch))
nnet.manual_seed(0)
model = net = seed_cnn((28, 28, 1))
if world > 1:
    net = distributed.convert_sync_batchnorm(net) if mode == "sync" else net
    model = distributed.DistributedDataParallel(net, broadcast_buffers=mode != "sync")
optimizer = nnet.optim.Adam(model.parameters(), lr=1e-3)
loader = DataLoader(subset, batch_size=batch, shuffle=True)
train_epoch(model, loader, optimizer, nn.CrossEntropyLoss(), 0, True, (rank, world))
"""
#: name: (ranks, mode, global batch)
CONFIGS = {
    "1 process, batch 100": (1, "local", 100),
    "1 process, batch 50": (1, "local", 50),
    "2 ranks x 50 (SyncBatchNorm)": (2, "sync", 100),
    "2 ranks x 50 (local BN)": (2, "local", 100),
}


def count(ranks: int, mode: str, batch: int, steps: int) -> int:
    """Instructions callgrind counts for the whole run of ``steps`` steps (on rank 1 of 2)."""
    # a fixed hash seed: with a random one, dict and set layouts differ between the short and the
    # long run, and the difference moved a step's count by about 0.1 M
    env = {**os.environ, "NNET_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONHASHSEED": "0", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        script = [sys.executable, "-c", STEPS, mode, str(steps), str(batch), str(DATA)]
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *script]
        if ranks > 1:  # rank 0 natively, the others under callgrind
            cmd = [mpiexec(), "-n", "1", *script, ":", "-n", str(ranks - 1), *cmd]
        subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        text = out.read_text()
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError("callgrind wrote no total")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="extra steps counted (default 10)")
    parser.add_argument("--only", help="comma-separated configuration numbers (1-based) to run; "
                        "the bound needs the first")  # fmt: skip
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    names = list(CONFIGS)
    if args.only:
        names = [names[int(i) - 1] for i in args.only.split(",")]
    per_step = {}
    for name in names:
        ranks, mode, batch = CONFIGS[name]
        short, long = count(ranks, mode, batch, 3), count(ranks, mode, batch, 3 + args.steps)
        per_step[name] = (long - short) / args.steps
    base = per_step.get("1 process, batch 100")
    print(f"instructions per step (callgrind, {args.steps} steps; of 2 ranks, rank 1's)")
    for name, n in per_step.items():
        bound = f"   bound {base / n:5.2f}x" if base else ""
        print(f"{name:30} {n / 1e6:8.1f} M{bound}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
