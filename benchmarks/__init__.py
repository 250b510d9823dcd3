"""nnet's benchmark suite: each figure beside its NumPy floor and PyTorch's eager mode, measured in one run.

Run ``python -m benchmarks`` (see benchmarks/README.md). Importing this package pins the BLAS and OpenMP
thread pools to the machine's cores; that only works before NumPy or PyTorch is imported, so the entry
points import this package first.
"""

from __future__ import annotations

import os
import sys

_POOLS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def _machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


#: Threads given to every side (NumPy's BLAS, PyTorch's intra-op pool); NNET_BENCH_THREADS overrides.
THREADS = int(os.environ.get("NNET_BENCH_THREADS", "0")) or _machine_cores()

# Both sides get the same pools: set before numpy/torch load their BLAS and OpenMP runtimes.
for _var in _POOLS:
    os.environ[_var] = str(THREADS)
# What `import nnet` before NumPy does (nnet/_openblas.py): OpenBLAS's idle workers sleep instead of
# spinning ~0.1 s after each product. This package loads NumPy first, so it sets the same here.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "10")

#: Set when NumPy was loaded before this package, so the pinning above may not have applied.
LATE_PINNING = "numpy" in sys.modules or "torch" in sys.modules
