"""threads_policy: training steps at one thread and at two, under each BLAS thread policy.

OpenBLAS's idle workers busy-wait for about 0.1 s after each product unless ``OPENBLAS_THREAD_TIMEOUT``
was set when it loaded; on a 2-core machine the spinning worker holds the core that nnet's own
threads (``parallel_for``) need for the passes that follow. Each configuration runs in a fresh
subprocess, because the timeout is read once, when NumPy loads OpenBLAS:

* ``1 thread``: ``NNET_NUM_THREADS=1``.
* ``2, spinning BLAS at 2``: OpenBLAS's default spinning (``OPENBLAS_THREAD_TIMEOUT=28`` set as a
  user would, so nnet keeps it), BLAS forced to two threads (nnet's policy before this benchmark
  existed).
* ``2, NumPy first``: NumPy imported before nnet, as most scripts do: nnet has OpenBLAS read the
  timeout again and restart its workers (``nnet.threads._Blas.stop_spinning``; until 2026-12-05 BLAS
  kept spinning here and nnet ran it on one thread inside its own two).
* ``2, nnet first``: ``import nnet`` before NumPy: nnet sets the timeout (nnet/_openblas.py),
  BLAS's workers sleep when idle, and BLAS and nnet both use two threads.

Models, trained as a user writes them (Adam, cross-entropy): the wide CNN (conv-bn-relu-pool,
32/64 channels, batch 64) in ``Sequential`` and the same layers called from a ``Module.forward``,
the seed CNN (batch 100) and the 784-256-10 MLP (batch 128). Each figure is the median step over
``--rounds`` rounds (configurations rotated, a pause between runs) of 25 timed steps after 5 warm-up
steps. ``--realtime`` runs each child under ``chrt -f 10`` (needs root): on a machine shared with
other work this keeps their processes off the cores while a child runs, so the figures approach a
quiet machine's.

    python -m benchmarks.threads_policy [--rounds 3] [--realtime]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("wide Sequential", "wide define-by-run", "seed CNN", "MLP")
#: name: (NumPy imported first, nnet threads, force BLAS to two threads)
CONFIGS = {
    "1 thread": (True, 1, False),
    "2, spinning BLAS at 2": (True, 2, True),
    "2, NumPy first": (True, 2, False),
    "2, nnet first": (False, 2, False),
}


def worker(numpy_first: bool, force_blas: bool) -> None:
    """Time every model in this process and print {model: median ms} as JSON."""
    # as a user's script starts: without the timeout benchmarks/__init__.py set in the parent
    os.environ.pop("OPENBLAS_THREAD_TIMEOUT", None)
    if force_blas:  # OpenBLAS's default spin (2**28 cycles), as a user's own setting
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = "28"
    if numpy_first:
        import numpy  # noqa: F401  (loads OpenBLAS before nnet can set its timeout)
    import nnet  # before NumPy in the other configurations, as its first import

    # isort: split
    import numpy as np

    from benchmarks import layer_orders, nnet_models
    from nnet import threads

    if force_blas:
        threads._blas.set_threads(nnet.get_num_threads())
    rng = np.random.default_rng(0)

    def batch(n: int, shape: tuple[int, ...]) -> tuple[nnet.Tensor, nnet.Tensor]:
        x = nnet.tensor(rng.standard_normal((n, *shape)).astype(np.float32))
        return x, nnet.tensor(rng.integers(0, 10, n))

    builds = {
        "wide Sequential": (nnet_models.wide_cnn, batch(64, (28, 28, 1))),
        "wide define-by-run": (
            lambda: layer_orders.nnet_define_by_run(("bn", "relu", "pool"), (32, 64), False),
            batch(64, (28, 28, 1)),
        ),
        "seed CNN": (nnet_models.seed_cnn, batch(100, (28, 28, 1))),
        "MLP": (nnet_models.mlp, batch(128, (784,))),
    }
    out = {}
    for name, (build, (x, y)) in builds.items():
        nnet.manual_seed(0)
        model = build()
        opt = nnet.optim.Adam(model.parameters(), 1e-3)
        loss_fn = nnet.nn.CrossEntropyLoss()
        times = []
        for i in range(30):
            start = time.perf_counter()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            if i >= 5:
                times.append(time.perf_counter() - start)
        out[name] = 1e3 * statistics.median(times)
        time.sleep(0.3)  # spinning workers of the previous model go idle
    print(json.dumps({"ms": out, "blas": threads.blas_info()}))


def run_config(name: str, realtime: bool) -> dict[str, float]:
    numpy_first, count, force = CONFIGS[name]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env.update(NNET_NUM_THREADS=str(count), PYTHONPATH=str(ROOT))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    code = f"from benchmarks.threads_policy import worker; worker({numpy_first}, {force})"
    cmd = [sys.executable, "-c", code]
    if realtime:
        cmd = ["chrt", "-f", "10", *cmd]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"threads_policy: {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["ms"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--realtime", action="store_true", help="run each child under chrt -f 10")
    args = parser.parse_args(argv)
    if args.realtime and shutil.which("chrt") is None:
        raise SystemExit("threads_policy: --realtime needs the chrt command (util-linux)")
    names = list(CONFIGS)
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            runs[name].append(run_config(name, args.realtime))
            time.sleep(0.5)
    load = os.getloadavg()[0]
    print(f"threads_policy: median ms per training step, {args.rounds} rounds, load {load:.1f}"
          f"{', children under chrt -f 10' if args.realtime else ''}")  # fmt: skip
    width = max(map(len, names)) + 2
    print("".ljust(width) + "".join(m.rjust(20) for m in MODELS))
    one = {m: statistics.median(r[m] for r in runs["1 thread"]) for m in MODELS}
    for name in names:
        cells = []
        for m in MODELS:
            ms = statistics.median(r[m] for r in runs[name])
            cells.append(f"{ms:7.2f} ({ms / one[m]:4.2f}x)".rjust(20))
        print(name.ljust(width) + "".join(cells))
    print("(x: against 1 thread; below 1.00x is faster)")


if __name__ == "__main__":
    main()
