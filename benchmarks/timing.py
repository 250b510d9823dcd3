"""How every figure in the suite is measured.

The protocol, and why (see ../shared/PERF-FACTS.md, "Measuring without fooling yourself"):

- Sides (nnet, the NumPy floor, PyTorch) are timed in *blocks* of steps, never step by step in
  alternation: OpenBLAS's idle workers busy-wait ~0.1 s after each BLAS call and PyTorch's OpenMP workers
  spin too, so the side that just ran slows the next one by up to 2-3x on 2 cores. Before each block the
  harness sleeps ``switch_sleep`` seconds (0.5 s) so the previous side's threads go idle.
- Only one side's working set is alive while it is timed: each block builds its model (``setup``), warms
  it up, times it, and drops it before the next side is built. Coexisting models overflow the cache.
- Several rounds, the side order rotated each round, so a slow drift of the shared machine falls on all
  sides alike; the figure is the median of every timed step of every round, with the quartiles kept to
  show the spread.
- Thread pools are pinned to the machine's cores for both sides (``benchmarks/__init__.py`` sets the
  environment before NumPy loads; :func:`load_torch` calls ``torch.set_num_threads``).
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import LATE_PINNING, THREADS

REPO = Path(__file__).resolve().parents[1]

Step = Callable[[], object]
Setup = Callable[[], Step]


@dataclass
class Config:
    """How long to measure. ``quick`` trades precision for a run of a minute or two."""

    quick: bool = False
    rounds: int = 5
    warmup: int = 3
    block_seconds: float = 0.4
    min_steps: int = 5
    max_steps: int = 200
    switch_sleep: float = 0.5

    @classmethod
    def make(cls, quick: bool) -> Config:
        if quick:
            return cls(
                quick=True, rounds=2, warmup=2, block_seconds=0.15, min_steps=3, max_steps=50
            )
        return cls()


@dataclass
class Stats:
    """Per-step times in seconds, pooled over all rounds."""

    median: float
    p25: float
    p75: float
    min: float
    n: int
    round_medians: list[float] = field(default_factory=list)
    #: Minor page faults per timed step: memory freed back to the system and touched afresh. High
    #: counts mean allocator churn (each fault costs ~0.1-1 us, far more on a busy machine).
    faults_per_step: float | None = None

    @classmethod
    def of(
        cls,
        samples: list[float],
        round_medians: list[float] | None = None,
        faults_per_step: float | None = None,
    ) -> Stats:
        s = sorted(samples)
        q = statistics.quantiles(s, n=4, method="inclusive") if len(s) > 1 else [s[0]] * 3
        return cls(
            statistics.median(s), q[0], q[2], s[0], len(s), round_medians or [], faults_per_step
        )

    @property
    def spread(self) -> float:
        """Interquartile range over the median: 0.05 means the middle half of the steps lies within 5%."""
        return (self.p75 - self.p25) / self.median if self.median else math.nan


@dataclass
class Measurement:
    """A side's result: ``stats`` in seconds per step, or ``error`` saying why there is none."""

    stats: Stats | None = None
    error: str | None = None


def pause(seconds: float) -> None:
    """Let the previous side's BLAS / OpenMP workers stop spinning before the next side runs."""
    gc.collect()
    time.sleep(seconds)


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def measure(
    sides: dict[str, Setup | None],
    cfg: Config,
    *,
    warmup: int | None = None,
    min_steps: int | None = None,
    max_steps: int | None = None,
    rounds: int | None = None,
    unavailable: dict[str, str] | None = None,
) -> dict[str, Measurement]:
    """Time each side's step in blocks, round after round; return a Measurement per side.

    ``sides`` maps a side's name to a ``setup()`` that builds its working set and returns ``step()``
    (``None`` for a side that cannot run; ``unavailable[name]`` says why). ``setup`` is called again
    for every block, so only one side's arrays are alive at a time. A setup or step that raises marks
    the side as failed with the error's first line; the other sides go on.
    """
    warmup = cfg.warmup if warmup is None else warmup
    lo = cfg.min_steps if min_steps is None else min_steps
    hi = cfg.max_steps if max_steps is None else max_steps
    n_rounds = cfg.rounds if rounds is None else rounds
    out: dict[str, Measurement] = {}
    samples: dict[str, list[float]] = {}
    per_round: dict[str, list[float]] = {}
    faults: dict[str, int] = {}
    active = []
    for name, setup in sides.items():
        if setup is None:
            out[name] = Measurement(error=(unavailable or {}).get(name, "not available"))
        else:
            active.append(name)
            samples[name] = []
            per_round[name] = []
    n_steps: dict[str, int] = {}
    for r in range(n_rounds):
        order = active[r % len(active) :] + active[: r % len(active)] if active else []
        for name in order:
            if name in out:  # failed in an earlier round
                continue
            pause(cfg.switch_sleep)
            try:
                step = sides[name]()  # type: ignore[misc]
                t0 = time.perf_counter()
                for _ in range(warmup):
                    step()
                warm = (time.perf_counter() - t0) / max(warmup, 1)
                if name not in n_steps:
                    want = math.ceil(cfg.block_seconds / warm) if warm > 0 else hi
                    n_steps[name] = min(hi, max(lo, want))
                times = []
                f0 = _minor_faults()
                for _ in range(n_steps[name]):
                    t0 = time.perf_counter()
                    step()
                    times.append(time.perf_counter() - t0)
                faults[name] = faults.get(name, 0) + _minor_faults() - f0
            except Exception as exc:  # a broken side is reported, not fatal
                out[name] = Measurement(error=describe_error(exc))
                continue
            finally:
                step = None  # drop the working set before the next side builds its own
            samples[name].extend(times)
            per_round[name].append(statistics.median(times))
    for name in active:
        if name not in out:
            n = len(samples[name])
            out[name] = Measurement(
                stats=Stats.of(samples[name], per_round[name], faults.get(name, 0) / n)
            )
    return out


def _minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not POSIX
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_once(fn: Callable[[], object]) -> float:
    """Wall time of one call, in seconds."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --- the optional reference library -------------------------------------------------------------

_torch: Any = None
_torch_error: str | None = None


def load_torch() -> tuple[Any, str | None]:
    """``(torch, None)`` with its intra-op pool pinned like NumPy's, or ``(None, why)``.

    PyTorch is never a dependency: every benchmark prints "n/a" for it when this returns None.
    NNET_BENCH_NO_TORCH=1 hides it on purpose (to check the suite runs without it).
    """
    global _torch, _torch_error
    if _torch is None and _torch_error is None:
        if os.environ.get("NNET_BENCH_NO_TORCH"):
            _torch_error = "disabled by NNET_BENCH_NO_TORCH"
        else:
            try:
                import torch
            except Exception as exc:  # ImportError, or a broken install
                _torch_error = f"torch not importable ({describe_error(exc)})"
            else:
                torch.set_num_threads(THREADS)
                _torch = torch
    return _torch, _torch_error


# --- what the figures were measured on ----------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except Exception:
        return None
    return res.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Versions, threads and BLAS of this run, stored in the JSON so two runs can be told apart."""
    import numpy as np

    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": THREADS,
        "late_pinning": LATE_PINNING,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for p in threadpool_info()
        ]
    except Exception:
        info["blas"] = None
    info["blas_check"] = blas_check()
    torch, why = load_torch()
    info["torch"] = torch.__version__ if torch is not None else None
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    else:
        info["torch_missing"] = why
    try:
        import nnet

        info["nnet"] = getattr(nnet, "__version__", "?")
    except Exception as exc:
        info["nnet"] = f"not importable: {describe_error(exc)}"
    return info


#: All threads slower than this multiple of one thread's matmul rate: the cores are contended.
CONTENDED = 1.1


def blas_check(seconds: float = 0.3) -> dict[str, float] | None:
    """GFLOP/s of a 512x512 float32 matmul with all threads and with one (needs threadpoolctl).

    On a quiet machine all threads beat one; when other processes hold the cores, BLAS threads wait
    for each other and all threads can be many times slower than one: then every figure is suspect.
    """
    try:
        import numpy as np
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    a = rng.standard_normal((512, 512), dtype=np.float32)
    out = np.empty_like(a)
    flops = 2 * 512**3

    def rate() -> float:
        np.matmul(a, a, out=out)
        ts = []
        end = time.perf_counter() + seconds / 2
        while time.perf_counter() < end or len(ts) < 3:
            t0 = time.perf_counter()
            np.matmul(a, a, out=out)
            ts.append(time.perf_counter() - t0)
        return flops / statistics.median(ts) / 1e9

    multi = rate()
    with threadpool_limits(limits=1, user_api="blas"):
        single = rate()
    return {"gflops_all_threads": multi, "gflops_one_thread": single}


def warnings_for(info: dict[str, Any]) -> list[str]:
    """Conditions that make the figures less trustworthy, printed above the table."""
    out = []
    if info.get("late_pinning"):
        out.append(
            "numpy/torch was imported before benchmarks/__init__.py: thread pinning may not apply"
        )
    if info.get("OPENBLAS_CORETYPE"):
        out.append(
            f"OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']} is set: it can force a slower BLAS kernel "
            "(unset it with OPENBLAS_L2_SIZE for this command to measure the default kernel)"
        )
    check = info.get("blas_check")
    if check and info.get("threads", 1) > 1:
        multi, single = check["gflops_all_threads"], check["gflops_one_thread"]
        if multi < CONTENDED * single:
            out.append(
                f"BLAS with {info['threads']} threads ran at {multi:.0f} GFLOP/s against "
                f"{single:.0f} with one: other processes hold the cores and BLAS threads wait for "
                "each other. Figures from this run are unreliable; rerun on a quiet machine "
                "(or compare with NNET_BENCH_THREADS=1)"
            )
    load = info.get("load_average")
    cores = info.get("cores") or 1
    if load and load[0] > 0.5 * cores:
        out.append(
            f"load average {load[0]:.1f} on {cores} cores before the run: other work shares the "
            "machine, absolute times are inflated (ratios hold better)"
        )
    return out


def ensure_repo_on_path() -> None:
    """Let ``import nnet`` find the checkout these benchmarks belong to when nnet is not installed."""
    root = str(REPO)
    if root not in sys.path:
        sys.path.insert(0, root)
