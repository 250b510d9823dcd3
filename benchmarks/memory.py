"""memory: peak resident memory of the wide CNN's training step, each side in a fresh process.

Each side runs in its own subprocess (``python -m benchmarks.memory --child SIDE``) so that no side's
allocations, imports or freed-but-kept pages count against another: it imports its library, notes its
resident set (the import baseline), builds the wide CNN and Adam, runs 5 training steps at batch 64,
and reports the peak resident set (``VmHWM`` from /proc/self/status: ``ru_maxrss`` would report the
spawning suite's own peak, which Linux carries across ``exec``; see ``_peak_bytes``). Two figures:
the whole process's peak, and the peak above the import baseline (the step's own working set: model,
optimizer state, activations, gradients, workspace; PyTorch's import alone is some hundreds of MB).
Each child runs twice (once with --quick) and the smaller peak is kept: allocator and OpenBLAS buffer
noise only ever adds. Target (issue 5): at most 1.2x PyTorch.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

from benchmarks.results import Row
from benchmarks.timing import REPO, Config, describe_error, load_torch

NAME = "memory"
TITLE = "peak resident memory of the wide CNN training step (batch 64), one fresh process per side"
STEPS = 5


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def _rss_bytes() -> int:
    """The resident set now."""
    now = _status_bytes("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_bytes() -> int:
    """The resident set's high-water mark of this process image.

    Linux's ``ru_maxrss`` survives ``exec``: a child spawned by a process that once held 1 GB reports
    at least 1 GB whatever it does itself. ``VmHWM`` belongs to the memory map that ``exec`` made
    fresh, so it is this program's own peak; ``ru_maxrss`` is the fallback without /proc.
    """
    hwm = _status_bytes("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(side: str) -> dict[str, float]:
    """Run in the subprocess: import, measure the baseline, train a few steps, report the peak."""
    from benchmarks.common import batch

    if side == "torch":
        torch, why = load_torch()
        if torch is None:
            raise RuntimeError(why)
    elif side == "nnet":
        from benchmarks import nnet_models

        nnet_models.nn()
        nnet_models.optim()
    baseline = _rss_bytes()
    from benchmarks.common import training_sides

    x, y = batch((64, 28, 28, 1))
    sides, why = training_sides("wide_cnn", x, y, "adam", 1e-3)
    setup = sides[side]
    if setup is None:
        raise RuntimeError(why.get(side, "not available"))
    step = setup()
    for _ in range(STEPS):
        step()
    peak = _peak_bytes()
    if side != "torch" and "torch" in sys.modules:
        raise RuntimeError("the measurement of a non-PyTorch side loaded torch")
    return {"baseline_mb": baseline / 2**20, "peak_mb": peak / 2**20}


def _run_child(side: str) -> dict[str, float]:
    env = os.environ.copy()
    if side != "torch":  # a side that does not use PyTorch must not load it
        env["NNET_BENCH_NO_TORCH"] = "1"
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--child", side],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        err = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(err[:160])
    return json.loads(lines[-1])


def run(cfg: Config) -> list[Row]:
    reps = 1 if cfg.quick else 2
    peak = Row(
        NAME, "peak RSS, whole process", "MB", target="<= 1.2x PyTorch", bounds=[("torch", 1.2)]
    )
    step = Row(
        NAME,
        "peak RSS above import baseline",
        "MB",
        target="<= 1.2x PyTorch",
        bounds=[("torch", 1.2)],
    )
    torch, why = load_torch()
    for side in ("nnet", "numpy", "torch"):
        if side == "torch" and torch is None:
            for row in (peak, step):
                row.values[side] = None
                row.notes[side] = why or "not available"
            continue
        try:
            got = [_run_child(side) for _ in range(reps)]
        except Exception as exc:
            for row in (peak, step):
                row.values[side] = None
                row.notes[side] = describe_error(exc)
            continue
        peaks = sorted(g["peak_mb"] for g in got)
        above = sorted(g["peak_mb"] - g["baseline_mb"] for g in got)
        # the smallest of the repetitions: noise (allocator, OpenBLAS buffers) only adds
        peak.values[side] = peaks[0]
        step.values[side] = above[0]
        peak.detail[side] = got
    return [peak, step]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        import benchmarks  # noqa: F401  (pins the thread pools before NumPy loads)

        try:
            print(json.dumps(child(sys.argv[2])))
        except Exception as exc:
            print(describe_error(exc), file=sys.stderr)
            sys.exit(1)
    else:
        from benchmarks.run import main

        main(["--only", NAME])
