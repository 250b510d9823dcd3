"""How many cores nnet uses: its own worker threads and the BLAS library's, set in one place.

``nnet.set_num_threads(n)`` and ``nnet.get_num_threads()`` work as in PyTorch. The starting value is the
environment variable ``NNET_NUM_THREADS`` when set, else the number of cores this process may run on.
The count governs both pools: the BLAS library NumPy loaded (OpenBLAS, driven through its C API, so no
extra package is needed) and nnet's worker threads, which split a kernel's NumPy work over blocks of
images (:func:`parallel_for`). NumPy releases the GIL inside its loops and BLAS calls, so those blocks
run truly in parallel.

The count is process-wide state, not a context variable like the grad modes: BLAS has one thread
count per process, and a per-context value would misreport it.

OpenBLAS's idle workers busy-wait about 0.1 s after each product unless ``OPENBLAS_THREAD_TIMEOUT``
was set when NumPy loaded it, and a spinning worker holds a core that nnet's threads need. So
``import nnet`` sets that variable when NumPy is not loaded yet (nnet/_openblas.py); when NumPy was
imported first it has OpenBLAS read the variable again and restart its workers
(:meth:`_Blas.stop_spinning`). When OpenBLAS spins anyway (the user's own timeout, or a BLAS nnet cannot
reconfigure) BLAS runs on one thread inside nnet's threads; products outside them then use one core.
``python -m benchmarks.threads_policy`` measures each case.

>>> import nnet
>>> n = nnet.get_num_threads()
>>> nnet.set_num_threads(1)
>>> nnet.get_num_threads()
1
>>> nnet.set_num_threads(n)
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from nnet import _openblas
from nnet._team import Team

__all__ = [
    "available_cores",
    "blas_for",
    "blas_threads",
    "blocks",
    "get_num_threads",
    "items_per_block",
    "parallel_for",
    "set_num_threads",
]

T = TypeVar("T")

ENV_VAR = "NNET_NUM_THREADS"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _parse_count(value: object, source: str) -> int:
    try:
        n = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(value, bool) or (isinstance(value, float) and value != n):
        raise ValueError(
            f"{source}: the thread count must be a positive integer, got {value!r}; "
            f"use e.g. 1 for one core or {available_cores()} for all of this machine's cores"
        )
    return n


class _Blas:
    """The thread-count entry points of the BLAS library NumPy loaded, found lazily.

    NumPy's wheels ship OpenBLAS with prefixed symbols (``scipy_openblas_set_num_threads64_``); a
    NumPy built against a system OpenBLAS exports the plain names. When neither is found the count
    still governs nnet's own threads and :attr:`controllable` is False.
    """

    _PREFIXES = ("scipy_openblas", "openblas")
    _SUFFIXES = ("64_", "_64_", "")

    def __init__(self) -> None:
        self.set: Callable[[int], None] | None = None
        self.get: Callable[[], int] | None = None
        self.timeout: Callable[[], int] | None = None
        self.reload: list[Callable[[], object] | None] = [None, None]
        self.corename: Callable[[], bytes] | None = None
        self.path: str | None = None
        self._searched = False

    def _candidates(self) -> Iterator[str]:
        root = Path(np.__file__).parent
        for folder in (root.parent / "numpy.libs", root / ".dylibs"):
            if folder.is_dir():
                yield from (str(p) for p in sorted(folder.glob("*openblas*")))
        maps = Path("/proc/self/maps")  # Linux: every library already mapped into the process
        if maps.exists():
            for line in maps.read_text().splitlines():
                path = line.split()[-1] if "/" in line else ""
                if "blas" in Path(path).name.lower():
                    yield path

    def _find(self) -> None:
        self._searched = True
        for path in self._candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in self._PREFIXES:
                for suffix in self._SUFFIXES:
                    setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                    getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                    if setter is not None and getter is not None:
                        setter.argtypes, setter.restype = [ctypes.c_int], None
                        getter.argtypes, getter.restype = [], ctypes.c_int
                        self.set, self.get, self.path = setter, getter, path
                        corename = getattr(lib, f"{prefix}_get_corename{suffix}", None)
                        if corename is not None:
                            corename.argtypes, corename.restype = [], ctypes.c_char_p
                            self.corename = corename
                        timeout = getattr(lib, "openblas_thread_timeout", None)
                        if timeout is not None:
                            timeout.argtypes, timeout.restype = [], ctypes.c_int
                            self.timeout = timeout
                            self.reload = [
                                getattr(lib, name, None)
                                for name in ("openblas_read_env", "blas_thread_shutdown_")
                            ]
                        return

    def stop_spinning(self) -> bool:
        """Give an OpenBLAS that loaded before nnet the idle-worker timeout nnet would have set
        (nnet/_openblas.py), when the user set none: set ``OPENBLAS_THREAD_TIMEOUT``, have OpenBLAS
        read its environment again, and stop its worker threads; the next product starts new ones,
        which read the timeout (OpenBLAS's own fork handler stops and restarts them the same way).
        Returns whether the workers now sleep when idle."""
        spin = self.workers_spin()  # finds the library first
        read_env, shutdown = self.reload
        if not spin or _openblas.USER_TIMEOUT or read_env is None or shutdown is None:
            return not spin
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(_openblas.SPIN_EXPONENT)
        read_env()
        shutdown()
        return not self.workers_spin()

    @property
    def controllable(self) -> bool:
        if not self._searched:
            self._find()
        return self.set is not None

    def workers_spin(self) -> bool:
        """Whether idle BLAS workers busy-wait long after each product: OpenBLAS's default, unless
        ``OPENBLAS_THREAD_TIMEOUT`` was at most :data:`SPIN_LIMIT` when it loaded (nnet/_openblas.py).
        Unknown libraries are taken not to spin."""
        if not self.controllable or self.timeout is None:
            return False
        exponent = self.timeout()  # 0: not set, OpenBLAS's default of 2**28 cycles
        return exponent == 0 or exponent > SPIN_LIMIT

    def core(self) -> str | None:
        """The CPU kernels OpenBLAS chose (``Haswell``, ``SkylakeX``, ...), None when unknown."""
        if not self.controllable or self.corename is None:
            return None
        return self.corename().decode(errors="replace")

    def threads(self) -> int | None:
        return self.get() if self.controllable and self.get is not None else None

    def set_threads(self, n: int) -> None:
        if self.controllable and self.set is not None:
            self.set(n)


_blas = _Blas()

#: Largest OPENBLAS_THREAD_TIMEOUT (log2 cycles) at which BLAS may share the cores with nnet's threads.
SPIN_LIMIT = 16


def _blas_count(n: int) -> int:
    """BLAS's thread count when nnet uses ``n``: ``n``, unless BLAS's idle workers would spin on the
    cores nnet's threads need; then one, and nnet's threads alone use the cores (parallel_for).
    Measured by ``python -m benchmarks.threads_policy --rounds 3 --realtime`` (wide CNN step):
    one thread 20.05 ms; two threads with BLAS spinning at two 19.67 ms, with BLAS at one inside
    nnet's two 16.38 ms."""
    return 1 if n > 1 and _blas.workers_spin() else n


_lock = threading.Lock()
_count: int | None = None
_team: Team | None = None


def get_num_threads() -> int:
    """The number of threads nnet and its BLAS library use (PyTorch's ``torch.get_num_threads``).

    Until :func:`set_num_threads` is called: ``NNET_NUM_THREADS`` when set, else BLAS's own count
    (which honours ``OPENBLAS_NUM_THREADS``), else the cores this process may run on.
    """
    global _count
    if _count is None:
        env = os.environ.get(ENV_VAR)
        if env:
            set_num_threads(_parse_count(env, ENV_VAR))
        else:
            set_num_threads(_blas.threads() or available_cores())
    assert _count is not None
    return _count


def set_num_threads(n: int) -> None:
    """Use ``n`` threads: nnet's worker threads and the BLAS library's (``torch.set_num_threads``).

    BLAS gets ``n`` too, except when its idle workers busy-wait after each product (the user's own
    ``OPENBLAS_THREAD_TIMEOUT`` above :data:`SPIN_LIMIT`, or an OpenBLAS nnet cannot reconfigure;
    see nnet/_openblas.py): then BLAS runs on one thread, inside nnet's, so that the spinning never
    takes the cores from nnet's threads.

    Raises ``ValueError`` when ``n`` is not a positive integer. More threads than cores are allowed
    (as in PyTorch) but only slow things down.
    """
    global _count, _team
    n = _parse_count(n, "set_num_threads")
    with _lock:
        if _count != n and _team is not None:
            _team.stop()
            _team = None
        _count = n
        _blas.set_threads(_blas_count(n))


def blas_info() -> dict[str, object]:
    """What nnet knows of the BLAS library: its path, whether its thread count can be set, the count,
    and the CPU kernels it runs (``core``). ``OPENBLAS_CORETYPE`` in the environment forces the
    kernels: on this project's AVX-512 machine it is set to ``Haswell``, whose AVX2 kernels ran a
    float32 1024^3 product at 138 GFLOP/s against 239 for the ``SkylakeX`` kernels OpenBLAS picks by
    itself (one thread, /tmp script, 2026-12-05). nnet leaves the choice to the user."""
    controllable = _blas.controllable  # searches first, so the path below is known
    return {
        "path": _blas.path,
        "controllable": controllable,
        "threads": _blas.threads(),
        "idle_workers_spin": _blas.workers_spin(),
        "core": _blas.core(),
    }


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with BLAS limited to ``n`` threads, restoring the count afterwards.

    Kernels that split their own work over nnet's threads wrap it in ``blas_threads(1)``: BLAS's
    idle workers busy-wait after each product and would take the cores from the worker threads.
    """
    before = _blas.threads()
    if before == n:  # nothing to change: the common case at one thread, kept cheap
        yield
        return
    _blas.set_threads(n)
    try:
        yield
    finally:
        if before is not None:
            _blas.set_threads(before)


#: Products of fewer multiply-adds run on one BLAS thread (:func:`blas_for`). A second thread halves
#: a product timed alone, but below some size it costs more than it saves: the hand-off to BLAS's
#: worker, and each thread writes its half of the result into its own core's cache, which the
#: single-threaded NumPy passes that follow read back across cores. An earlier host ran the seed's
#: step slower with its products (2.8M-7.7M) on two BLAS threads: 4.66 against 5.62 ms (``python -m
#: benchmarks.threads_policy``). On the 2-vCPU EPYC of 2026-12-06 a quiet machine gains from two BLAS
#: threads from 2-4M (``python -m benchmarks.crossovers small_product --rounds 7``, a linear and a
#: ReLU forward + backward: 3.7M 0.32 against 0.27 ms, 7.3M 0.57 against 0.41; the seed's step at
#: two threads 4.19 -> 4.03 ms at 2**22, with or without chrt), but with two other CPU-bound
#: processes running, BLAS's two threads spin-wait for each other on shared cores: the seed's first
#: linear (7.7M) took 9.8 ms instead of 0.21 forward and 7.6 instead of 0.42 backward, the step 4x
#: (in-process A/B under load, no chrt), where the wide CNN's 25.7M product still gained (0.44
#: against 0.71 ms). So the constant stays well above the quiet machine's crossover.
SMALL_PRODUCT_MACS = 2**24


def blas_for(macs: int) -> AbstractContextManager[None]:
    """The BLAS threads for a product of ``macs`` multiply-adds: one when it is below
    :data:`SMALL_PRODUCT_MACS`, else the count as set (a no-op context)."""
    return blas_threads(1) if macs < SMALL_PRODUCT_MACS else nullcontext()


def _workers(n: int) -> Team:
    global _team
    with _lock:
        if _team is None:
            _team = Team(n - 1)
        return _team


def _forget_team_after_fork() -> None:
    """A forked child (a DataLoader worker) has only the forking thread: the parent's workers have
    no threads there and its locks may be held by ones that are gone, so the child starts afresh."""
    global _team, _lock
    _team = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_forget_team_after_fork)


def blocks(n: int, min_block: int = 1) -> int:
    """How many blocks :func:`parallel_for` cuts ``range(n)`` into at the current thread count
    (when its workers are free).

    >>> from nnet.threads import blocks
    >>> blocks(10, min_block=10)
    1
    """
    return max(1, min(get_num_threads(), n // max(min_block, 1)))


def parallel_for(fn: Callable[[int, int], T], n: int, *, min_block: int = 1) -> list[T]:
    """``[fn(start, stop) for each block]``: ``range(n)`` cut into one contiguous block per thread.

    The blocks run at once, the first on the calling thread and the others on nnet's workers, with
    BLAS limited to one thread each; results come back in block order and a worker's exception is
    raised here. With one thread, or fewer than ``2 * min_block`` items, it is just ``[fn(0, n)]``,
    as it is when the workers are busy: for a call from inside a block, or from a second thread
    while another's blocks run.
    ``fn`` should do NumPy work only: worker threads do not see the caller's context variables
    (grad mode, fusion switches), so recording tensor operations there would use the defaults.

    >>> from nnet.threads import parallel_for
    >>> parallel_for(lambda start, stop: sum(range(start, stop)), 10) in ([45], [10, 35])
    True
    """
    threads = blocks(n, min_block)
    if threads <= 1:
        return [fn(0, n)]
    bounds = [n * i // threads for i in range(threads + 1)]
    team = _workers(get_num_threads())
    with blas_threads(1):
        parts = team.run(
            lambda: fn(bounds[0], bounds[1]),
            [partial(fn, bounds[i], bounds[i + 1]) for i in range(1, threads)],
        )
    return [fn(0, n)] if parts is None else parts


#: Bytes a block of :func:`parallel_for` should hold at least. A block's NumPy calls each hold the GIL
#: for a few microseconds around their loops, so blocks of little data serialize the threads on it
#: (and hand-off costs tens of microseconds); about 1 MB per block keeps the loops dominant.
MIN_BLOCK_BYTES = 2**20


def items_per_block(item_bytes: int) -> int:
    """The ``min_block`` for :func:`parallel_for` over items of ``item_bytes`` bytes each (images):
    enough items that a block holds :data:`MIN_BLOCK_BYTES`, so small batches stay on one thread.

    >>> from nnet.threads import items_per_block
    >>> items_per_block(2**18)
    4
    """
    return max(1, -(-MIN_BLOCK_BYTES // max(1, item_bytes)))


def apply_environment() -> None:
    """Settle the thread counts at import (``NNET_NUM_THREADS`` or the default), so they govern plain
    NumPy products from the start rather than from nnet's first kernel. An OpenBLAS that loaded before
    nnet is first given the idle-worker timeout nnet would have set (:meth:`_Blas.stop_spinning`)."""
    _blas.stop_spinning()
    get_num_threads()
