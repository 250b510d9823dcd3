"""``python -m benchmarks.primitives`` with several networks: one process, each network's step and
primitives reported under its own heading. Run in a subprocess: the timers wrap every Function
class for the life of the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_several_networks_report_apart() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NNET_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.primitives", "seed", "cbrp", "--steps", "2",
         "--warmup", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    lines = run.stdout.splitlines()
    heads = [i for i, line in enumerate(lines) if not line.startswith(" ")]
    assert [lines[i].split(":")[0] for i in heads] == ["seed", "cbrp"]
    seed, cbrp = lines[heads[0] : heads[1]], lines[heads[1] :]
    assert any("FewChannelConvReluPool" in line for line in seed)
    assert not any("Winograd" in line for line in seed)
    assert any("WinogradBatchNormReluPool" in line for line in cbrp)
    assert not any("FewChannel" in line for line in cbrp)
