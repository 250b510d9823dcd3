"""A short atheris run over both readers, when atheris is installed (an optional tool)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")


def test_a_short_coverage_guided_run_finds_nothing():
    script = Path(__file__).with_name("fuzz_readers.py")
    run = subprocess.run(
        [sys.executable, str(script), "-atheris_runs=1500", "-seed=1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done 1500 in" in run.stderr, run.stderr[-2000:]
