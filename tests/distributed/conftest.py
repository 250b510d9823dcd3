"""Helpers for the MPI tests: launch ``mpiexec -n 2`` in a subprocess, with a timeout that fails
the test (and kills the whole job) instead of hanging the suite."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

WORKERS = Path(__file__).resolve().parent / "workers"
TIMEOUT = 180  # seconds: generous for a shared 2-core machine; a hang fails the test


def find_mpiexec() -> str | None:
    """The ``mpiexec`` beside this interpreter (pip's mpich installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = find_mpiexec()
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
    reason='needs the distributed extra (mpi4py and an mpiexec): pip install -e ".[distributed]"',
)


def run(argv: list[str], timeout: float = TIMEOUT, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``argv`` in its own process group; on timeout kill the group and fail."""
    full_env = {**os.environ, "NNET_NUM_THREADS": "1"}
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        full_env.pop(var, None)  # a test run under a launcher must not pass its rank on
    full_env.update(env or {})
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(argv)} did not end within {timeout} s\n{out}\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def mpirun(args: list[str], n: int = 2, **kw: object) -> subprocess.CompletedProcess[str]:
    """``mpiexec -n n`` of ``args`` (a worker script's name and its arguments, or a command)."""
    assert MPIEXEC is not None
    if args[0].endswith(".py"):
        args = [sys.executable, str(WORKERS / args[0]), *args[1:]]
    return run([MPIEXEC, "-n", str(n), *args], **kw)  # type: ignore[arg-type]


def nnet_command() -> str:
    return str(Path(sys.executable).parent / "nnet")
