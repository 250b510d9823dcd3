"""Data-parallel training over MPI (mpi4py): ``pip install "nnet[distributed]"``.

Launch the same script on N processes with ``mpiexec -n N python train.py``; each process is a
rank. Without a launcher a script runs as a world of one, where every collective is the identity
and mpi4py is not needed. See docs/distributed.md.

>>> import nnet.distributed as dist
>>> dist.world_size()
1
"""

from nnet.distributed.comm import (
    abort,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    communicator,
    init,
    is_main,
    launched,
    rank,
    world_size,
)
from nnet.distributed.ddp import DistributedDataParallel
from nnet.distributed.sampler import DistributedSampler
from nnet.distributed.sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm

__all__ = [
    "DistributedDataParallel",
    "DistributedSampler",
    "SyncBatchNorm",
    "abort",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "communicator",
    "convert_sync_batchnorm",
    "init",
    "is_main",
    "launched",
    "rank",
    "world_size",
]
