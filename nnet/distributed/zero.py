"""The optimizer's update split over the ranks of one machine (ZeRO stage 1, through shared memory).

Data parallelism gives every rank the same averaged gradients, so every rank would run the same
optimizer update over all the parameters: for the seed CNN's Adam about 0.2-0.4 ms a step whatever
the batch, a step cost that two ranks each pay in full. Here each rank updates only its part of the
flat arrays (:mod:`nnet.optim.flat`): the optimizer's state entries (Adam's moments, SGD's momentum)
and the step live in an MPI-3 shared-memory window that all ranks of the machine map, each rank
computes the step of its part into the window, the ranks meet, and each subtracts the whole step
from its own parameters. The arithmetic is elementwise, so the parameters get the same bits as when
every rank updates everything, and the state entries seen from any rank (rank 0's checkpoint) are
whole: each rank's views cover the whole window, whose parts the ranks keep up to date.

Nothing is written to a part that another rank may be reading: a rank writes its part of the step
and of the state only after the gradient sum of the step, which it passes only once every rank has
finished the previous step (read the whole step and let go of the state: between steps, rank 0
saving a checkpoint holds the others at the next gradient sum).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from nnet.distributed import comm
from nnet.distributed.node_sum import NodeSum

#: Flat arrays in the window: state entries and the step (Adam with AMSGrad: three moments).
ENTRIES = 4
_ALIGN = 64  # bytes: the parts start on cache lines of their own


class OptimizerShard:
    """Shared flat arrays of ``size`` elements of ``dtype`` for one optimizer's update over the
    ranks of ``node`` (all of which create it together), this rank's part of them, and the meeting
    (``meeting``, the gradient sum's, whose counts order the ranks). Used through
    :func:`nnet.optim.flat.share_gradients`: DistributedDataParallel declares it with its bucket."""

    def __init__(self, node: Any, size: int, dtype: np.dtype, meeting: NodeSum) -> None:
        MPI = comm.mpi()
        itemsize = np.dtype(dtype).itemsize
        rank, ranks = node.Get_rank(), node.Get_size()
        nbytes = ENTRIES * size * itemsize if rank == 0 else 0  # one segment, on rank 0
        self._win = MPI.Win.Allocate_shared(nbytes, itemsize, comm=node)
        self._win.Lock_all(MPI.MODE_NOCHECK)
        whole = np.frombuffer(self._win.Shared_query(0)[0], dtype, count=ENTRIES * size)
        self._arrays = [whole[k * size : (k + 1) * size] for k in range(ENTRIES)]
        step = max(1, _ALIGN // itemsize)
        bounds = [min(size, (size * r // ranks) // step * step) for r in range(ranks)] + [size]
        self.part = (bounds[rank], bounds[rank + 1])
        self._meeting = meeting
        self._owner: weakref.ReferenceType[Any] | None = None

    def arrays(self, owner: Any, count: int) -> list[np.ndarray] | None:
        """``count`` shared flat arrays for ``owner`` (an optimizer), the last one for the step;
        None when it needs more than there are or another live optimizer holds them."""
        held = None if self._owner is None else self._owner()
        if count > ENTRIES or (held is not None and held is not owner):
            return None
        self._owner = weakref.ref(owner)
        return self._arrays[:count]

    def meet(self) -> None:
        """Wait until every rank has written its part (and see the others' parts)."""
        self._win.Sync()
        self._meeting.meet()
        self._win.Sync()
