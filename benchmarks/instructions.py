"""Instructions per op of the overhead chain, counted by valgrind's callgrind: a figure that the
machine's load cannot move (``python -m benchmarks.instructions [--scalar] [--reps N]``).

The chain is ``overhead``'s: 500 x (``h = h * a``; ``h = h + b``) on 16 float32 values, then
``h.sum().backward()``. The script runs it under callgrind with 0 and with N repetitions and prints
(instructions(N) - instructions(0)) / (1,000 N): start-up and imports cancel out. Use it to compare
two versions of the engine's per-op path in the same environment (the count moves by a few percent
between interpreters and environments); it needs valgrind (Debian's ``valgrind`` package).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CHAIN = """
import sys, numpy as np, nnet
x = nnet.tensor(np.ones(16, np.float32), requires_grad=True)
a = nnet.tensor(np.full(16, 1.0001, np.float32)); b = nnet.tensor(np.full(16, 0.001, np.float32))
scalar = sys.argv[1] == "scalar"
for _ in range(int(sys.argv[2])):
    h = x
    for _ in range(500):
        h = (h * 1.0001 + 0.001) if scalar else (h * a + b)
    h.sum().backward()
"""


def count(mode: str, reps: int) -> int:
    """Instructions callgrind counts for the whole run of the chain, ``reps`` times."""
    # one BLAS thread: an idle OpenBLAS worker spins, and its spin would be counted (~1,400 per op)
    env = dict(
        os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OPENBLAS_NUM_THREADS="1"
    )
    python = sys.executable  # the interpreter itself (a pyenv shim would be a shell script)
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, "-c", CHAIN,
         mode, str(reps)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : ([\d,]+)", out.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scalar", action="store_true", help="Python-float operands")
    parser.add_argument("--reps", type=int, default=10, help="chains counted (default 10)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    mode = "scalar" if args.scalar else "tensor"
    per_op = (count(mode, args.reps) - count(mode, 0)) / (1000 * args.reps)
    print(f"{per_op:,.0f} instructions per op ({mode} operands, forward + backward)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
