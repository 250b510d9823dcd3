"""The process group: rank and world size from MPI (mpi4py), or a one-process world without it.

A process started by an MPI launcher (``mpiexec``, ``srun``) joins ``MPI.COMM_WORLD``; any other
process is a world of one, where every collective is the identity and mpi4py is not needed. Under a
launcher, :func:`init` also sets this rank's share of the node's cores as nnet's thread count (unless
``NNET_NUM_THREADS`` says otherwise) and installs an exception hook that prints the failing rank's
traceback and aborts the whole job, so that no other rank waits for it in a collective.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

import numpy as np

from nnet import threads
from nnet.autograd.tensor import Tensor

INSTALL_HINT = 'pip install "nnet[distributed]" (mpi4py and MPICH from the package registry)'
# Variables that MPI launchers set in every process they start: MPICH's and Intel MPI's hydra
# (PMI_*), Open MPI (OMPI_*), PMIx-based launchers such as Slurm's srun --mpi=pmix (PMIX_*).
LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")

_OPS = ("sum", "mean", "max", "min")
_YIELD_SECONDS = 5e-3  # then sleep: see wait()
#: Seconds a failing rank waits between writing its message and MPI_Abort. MPICH's launcher kills
#: the job on the first abort and may exit before it has forwarded what the ranks wrote to their
#: pipes: under load the failing rank's message was lost (1 run in 12 of the fault tests, with two
#: busy loops on the 2 cores); the pause lets the launcher forward it.
ABORT_GRACE = 0.5
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


class _World:
    comm: Any = None  # mpi4py's COMM_WORLD, or None in a world of one
    MPI: Any = None  # the mpi4py.MPI module once joined (an import per collective costs ~1 us)
    rank = 0
    size = 1
    local_size = 1  # ranks on this node
    initialised = False


_world = _World()


def launched() -> bool:
    """Whether an MPI launcher started this process (``mpiexec``, ``srun``)."""
    return any(v in os.environ for v in LAUNCHER_VARS)


def mpi() -> Any:
    """The ``mpi4py.MPI`` module, or an ImportError that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(
            f"nnet.distributed needs mpi4py and an MPI library: {INSTALL_HINT}"
        ) from e
    return MPI


def init() -> int:
    """Join the job's process group (idempotent) and return the world size.

    Under an MPI launcher: rank and size from ``MPI.COMM_WORLD``, BLAS and nnet threads set to
    this rank's share of the node's cores unless ``NNET_NUM_THREADS`` is set, and an exception on
    any rank aborts the whole job with that rank's traceback. Otherwise a world of one.

    >>> import nnet.distributed as dist
    >>> dist.init(), dist.rank(), dist.world_size()
    (1, 0, 1)
    """
    if _world.initialised:
        return _world.size
    if launched():
        MPI = _world.MPI = mpi()
        comm = MPI.COMM_WORLD
        _world.comm, _world.rank, _world.size = comm, comm.Get_rank(), comm.Get_size()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        _world.local_size = node.Get_size()
        node.Free()
        if _world.size > 1:
            sys.excepthook = _abort_on_exception
            if not os.environ.get(threads.ENV_VAR):
                # Two ranks on two cores each running two BLAS threads fight for the cores.
                threads.set_num_threads(max(1, threads.available_cores() // _world.local_size))
    _world.initialised = True
    return _world.size


def _abort_on_exception(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    """Print the traceback naming the rank, then end every rank of the job (MPI_Abort)."""
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(f"nnet.distributed: rank {_world.rank} of {_world.size} failed:\n{text}")
    sys.stderr.flush()
    abort(1)


def abort(code: int = 1) -> None:
    """End every rank of the job now with exit status ``code`` (a no-op exit in a world of one)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if _world.comm is not None and _world.size > 1:
        time.sleep(ABORT_GRACE)
        _world.comm.Abort(code)
    sys.exit(code)


def rank() -> int:
    """This process's rank, 0 to ``world_size() - 1`` (0 in a world of one)."""
    init()
    return _world.rank


def world_size() -> int:
    """The number of processes in the job (1 when not launched by an MPI launcher)."""
    return init()


def is_main() -> bool:
    """Whether this is rank 0, the one that prints and writes files."""
    return rank() == 0


def communicator() -> Any:
    """mpi4py's ``COMM_WORLD`` of this job, or None in a world of one."""
    init()
    return _world.comm


def barrier() -> None:
    """Wait until every rank has reached this call."""
    if init() > 1:
        wait(_world.comm.Ibarrier())


def _buffer(x: Any, what: str) -> np.ndarray:
    data = x.data if isinstance(x, Tensor) else x
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{what}: expected a Tensor or a NumPy array, got {type(x).__name__}")
    if not data.flags.c_contiguous:
        raise ValueError(
            f"{what}: the array of shape {data.shape} is not C-contiguous; MPI sends it in place, "
            "so pass np.ascontiguousarray(x)"
        )
    return data


def all_reduce(x: Any, op: str = "sum") -> Any:
    """Combine ``x`` (a Tensor or a C-contiguous array) over all ranks, in place, and return it.

    ``op`` is ``"sum"``, ``"mean"``, ``"max"`` or ``"min"``. Not recorded by autograd: for a
    differentiable sum use :func:`nnet.distributed.functional.all_reduce`.

    >>> import numpy as np, nnet.distributed as dist
    >>> dist.all_reduce(np.array([1.0, 2.0]), op="mean")
    array([1., 2.])
    """
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(_OPS)}, got {op!r}")
    data = _buffer(x, "all_reduce")
    if init() > 1:
        MPI = _world.MPI
        mpi_op = MPI.MAX if op == "max" else MPI.MIN if op == "min" else MPI.SUM
        wait(_world.comm.Iallreduce(MPI.IN_PLACE, data, op=mpi_op))
        if op == "mean":
            data /= _world.size
    return x


def wait(*requests: Any) -> None:
    """Wait for MPI requests: poll, yielding the core between polls, then sleep in growing steps.

    MPI's own waits spin on the core. Where ranks share cores with other work (more processes
    than cores, as on a loaded workstation) a spinning rank takes the core from the very rank it
    waits for. Yielding (``sched_yield``) between polls gives the core to any other runnable
    process and costs nothing when there is none, so the rank still sees a collective complete
    within microseconds; a wait longer than a few milliseconds (another rank writing a
    checkpoint, or descheduled) sleeps instead, so that it does not keep its core busy.
    """
    MPI = _world.MPI or mpi()
    pending = list(requests)
    test = MPI.Request.Testall
    _poll(lambda: bool(test(pending)))


def wait_for(done: Callable[[], bool]) -> None:
    """Wait until ``done()`` is true, polling as :func:`wait` polls MPI (a flag in shared memory
    that another rank of this machine sets, :class:`~nnet.distributed.node_sum.NodeSum`)."""
    _poll(done)


def _poll(done: Callable[[], bool]) -> None:
    if done():
        return
    start = time.perf_counter()
    while time.perf_counter() - start < _YIELD_SECONDS:
        _yield()
        if done():
            return
    delay = 1e-5
    while not done():
        time.sleep(delay)
        delay = min(2 * delay, 1e-3)


def broadcast(x: Any, src: int = 0) -> Any:
    """Overwrite ``x`` (a Tensor or a C-contiguous array) on every rank with rank ``src``'s
    values, in place, and return it.

    >>> import numpy as np, nnet.distributed as dist
    >>> dist.broadcast(np.arange(3))
    array([0, 1, 2])
    """
    data = _buffer(x, "broadcast")
    size = init()
    if not 0 <= src < size:
        raise ValueError(f"broadcast: src must be a rank in [0, {size}), got {src}")
    if size > 1:
        wait(_world.comm.Ibcast(data, root=src))
    return x


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (any picklable value), as a list indexed by rank."""
    if init() > 1:
        return list(_world.comm.allgather(obj))
    return [obj]
