"""``python -m benchmarks.threads_ab``: one process alternating thread counts, each step's phases and
primitives reported with a column per count. Run in a subprocess: the timers wrap every Function
class for the life of the process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.threads_ab", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_each_thread_count_gets_a_column_for_the_step_its_phases_and_primitives() -> None:
    run = _run("seed", "--threads", "1,2", "--rounds", "2", "--per", "1", "--warmup", "0")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("seed (Sequential): 2 rounds x 1 steps")
    assert "1 thread(s)" in lines[1] and "2 thread(s)" in lines[1]
    cell = re.compile(r"(\d+) \[\s*(\d+)-\s*(\d+)\] (\d+\.\d\d)")
    rows = {line[:50].strip(): cell.findall(line[50:]) for line in lines[2:]}
    assert next(iter(rows)) == "step"
    for name in ("phase forward", "phase backward", "phase optimizer", "phase loss"):
        assert name in rows
    assert any(name.startswith("ConvReluPoolBatchNorm.forward") for name in rows)
    for cells in rows.values():  # per count: median [quartiles] and the ratio to the first count
        assert len(cells) == 2
        assert all(int(q1) <= int(m) <= int(q3) for m, q1, q3, _ in cells)
    assert rows["step"][0][3] == "1.00"


def test_bad_thread_lists_are_refused_with_the_reason() -> None:
    for bad in ("1,x", "0,2", "2,2"):
        run = _run("seed", "--threads", bad, "--rounds", "1")
        assert run.returncode == 2
        assert "--threads" in run.stderr
