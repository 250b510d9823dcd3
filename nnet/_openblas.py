"""Set before NumPy loads OpenBLAS: how long its idle worker threads busy-wait.

OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` once, when the library loads, and by default its workers spin
for 2**28 cycles (about 0.1 s) after each product. Spinning workers hold the cores that nnet's own
threads need for the NumPy passes that follow (a wide CNN training step: 20.05 ms at one thread, 19.67
at two with spinning workers, 15.30 at two with the timeout at 2**10 cycles; ``python -m
benchmarks.threads_policy --rounds 3 --realtime``, 2026-12-04).
nnet sets it only when the user has not. When NumPy (and OpenBLAS) loaded first, :mod:`nnet.threads`
has OpenBLAS read it again and restart its workers (``_Blas.stop_spinning``); when the user's own
value lets the workers spin, it keeps BLAS on one thread.
"""

import os
import sys

#: log2 of the cycles an idle OpenBLAS worker spins before it sleeps (OpenBLAS takes 4 to 30).
SPIN_EXPONENT = 10

#: Whether the user chose the timeout (then nnet keeps it, whatever it is).
USER_TIMEOUT = "OPENBLAS_THREAD_TIMEOUT" in os.environ

if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", str(SPIN_EXPONENT))
