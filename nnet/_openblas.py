"""Set before NumPy loads OpenBLAS: how long its idle worker threads busy-wait.

OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` once, when the library loads, and by default its workers spin
for 2**28 cycles (about 0.1 s) after each product. Spinning workers hold the cores that nnet's own
threads need for the NumPy passes that follow (a wide CNN training step at two threads took 22.7 ms
against 20.2 at one; with the timeout at 2**10 cycles, 15.5 ms: measured by benchmarks/threads_policy.py).
nnet sets it only when the user has not and NumPy is not loaded yet; :mod:`nnet.threads` reads what
OpenBLAS got and keeps BLAS on one thread when its workers still spin.
"""

import os
import sys

#: log2 of the cycles an idle OpenBLAS worker spins before it sleeps (OpenBLAS takes 4 to 30).
SPIN_EXPONENT = 10

if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(SPIN_EXPONENT))
