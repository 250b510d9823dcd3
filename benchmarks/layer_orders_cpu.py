"""layer_orders by process CPU time: nnet's training step for each network of layer_orders, in
``Sequential`` and define-by-run, one thread, each model timed in its own subprocess (so only its
working set is alive), median of the steps' CPU times. On a machine shared with other work, CPU time
moves far less than wall time (other processes delay a step but do not add to its CPU time); this
compares nnet's two containers only, not PyTorch. ``--callgrind`` counts instructions per step
instead (valgrind's callgrind, one step and 1 + N steps, the difference over N: start-up and the
first step's allocations cancel out), a figure the machine's load cannot move at all.

    python -m benchmarks.layer_orders_cpu [--steps 30]
    python -m benchmarks.layer_orders_cpu --callgrind [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: Runs in the subprocess: argv = network index, container, steps, warm-up steps, "time" (prints
#: the median in ms) or "count" (only runs them, under callgrind).
_STEP = """
import statistics, sys, time
from benchmarks import layer_orders, nnet_models
from benchmarks.common import batch
import nnet
net, order, channels, n, dropout = layer_orders.NETWORKS[int(sys.argv[1])]
build = layer_orders.nnet_sequential if sys.argv[2] == "seq" else layer_orders.nnet_define_by_run
x, y = batch((n, 28, 28, 1))
nnet.manual_seed(0)
model = build(order, channels, dropout)
opt = nnet_models.optim().Adam(model.parameters(), lr=1e-3)
step = nnet_models.train_step(model, opt, *nnet_models.tensors(x, y))
for _ in range(int(sys.argv[4])):
    step()
if sys.argv[5] == "count":
    for _ in range(int(sys.argv[3])):
        step()
    sys.exit()
times = []
for _ in range(int(sys.argv[3])):
    start = time.process_time()
    step()
    times.append(time.process_time() - start)
print(1e3 * statistics.median(times))
"""


def _env() -> dict[str, str]:
    repo = Path(__file__).resolve().parents[1]
    return dict(os.environ, PYTHONPATH=str(repo), OPENBLAS_NUM_THREADS="1", NNET_NUM_THREADS="1")


def cpu_ms(index: int, container: str, steps: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _STEP, str(index), container, str(steps), "3", "time"],
        capture_output=True, text=True, env=_env(), check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def _instructions(index: int, container: str, steps: int) -> int:
    """What callgrind counts for a model's set-up, one warm-up step and ``steps`` more."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
         _STEP, str(index), container, str(steps), "1", "count"],
        capture_output=True, text=True, env=_env(), check=True,
    )  # fmt: skip
    found = re.search(r"Collected : ([\d,]+)", out.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def instructions_per_step(index: int, container: str, steps: int) -> float:
    """Millions of instructions per training step, one thread."""
    return (_instructions(index, container, steps) - _instructions(index, container, 0)) / (
        1e6 * steps
    )


def main(argv: list[str] | None = None) -> int:
    from benchmarks.layer_orders import NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="steps per model (30; 3 counted)")
    parser.add_argument(
        "--callgrind", action="store_true", help="instructions per step (needs valgrind)"
    )
    args = parser.parse_args(argv)
    if args.callgrind:
        if shutil.which("valgrind") is None:
            print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
            return 1
        steps = args.steps or 3
        print(f"millions of instructions per step (callgrind, {steps} steps), one thread")
        measure = instructions_per_step
    else:
        steps = args.steps or 30
        print(f"load average {os.getloadavg()[0]:.1f}; ms of CPU per step, one thread")
        measure = cpu_ms
    for i, (net, order, _, _, _) in enumerate(NETWORKS):
        seq, dbr = measure(i, "seq", steps), measure(i, "dbr", steps)
        name = f"{net} conv-{'-'.join(order)}"
        print(f"{name:28s} Sequential {seq:7.2f}  define-by-run {dbr:7.2f}  ratio {dbr / seq:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
