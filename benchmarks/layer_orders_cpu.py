"""layer_orders by process CPU time: nnet's training step for each network of layer_orders, in
``Sequential`` and define-by-run, one thread, each model timed in its own subprocess (so only its
working set is alive), median of the steps' CPU times. On a machine shared with other work, CPU time
moves far less than wall time (other processes delay a step but do not add to its CPU time); this
compares nnet's two containers only, not PyTorch.

    python -m benchmarks.layer_orders_cpu [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

#: Runs in the subprocess: argv = network index, container, steps; prints the median in ms.
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
for _ in range(3):
    step()
times = []
for _ in range(int(sys.argv[3])):
    start = time.process_time()
    step()
    times.append(time.process_time() - start)
print(1e3 * statistics.median(times))
"""


def cpu_ms(index: int, container: str, steps: int) -> float:
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), OPENBLAS_NUM_THREADS="1", NNET_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _STEP, str(index), container, str(steps)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    from benchmarks.layer_orders import NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per model")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}; ms of CPU per step, one thread")
    for i, (net, order, _, _, _) in enumerate(NETWORKS):
        seq, dbr = cpu_ms(i, "seq", args.steps), cpu_ms(i, "dbr", args.steps)
        name = f"{net} conv-{'-'.join(order)}"
        print(f"{name:28s} Sequential {seq:6.2f}  define-by-run {dbr:6.2f}  ratio {dbr / seq:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
