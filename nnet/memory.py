"""Keep freed memory in the process, so each training step does not fault its arrays in afresh.

A training step allocates and frees the same large arrays every time. glibc's defaults hand freed
memory back to the operating system (large blocks are unmapped, the heap's top is trimmed), so the
next step takes a page fault per 4 KiB while writing them again: about 3,800 faults (15 MB) per
step of the seed network here, which doubled its step time (15.7 -> 7.7 ms median with the
thresholds below, measured in one session on a loaded 2-core machine). A NumPy program that keeps
its buffers between steps never pays this; raising glibc's two thresholds gives nnet the same.

nnet does this once at import on glibc systems. Set the environment variable
``NNET_RETAIN_FREED_MEMORY=0`` before importing nnet to keep the C library's defaults (the price is
the page faults; the benefit, memory returned to the system between steps).

>>> import nnet
>>> isinstance(nnet.memory.retain_freed_memory(), bool)
True
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap instead of their own mapping (glibc's maximum).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the heap's top is kept up to this much before it is returned to the system.
TRIM_THRESHOLD = 256 * 2**20


def retain_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse; True if it agreed, False elsewhere (not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def _at_import() -> None:
    if os.environ.get("NNET_RETAIN_FREED_MEMORY", "1") != "0":
        retain_freed_memory()
